-- wrk request script for bench/run.mjs: method, body and headers come from the environment
-- (WRK_METHOD, WRK_BODY, WRK_CONTENT_TYPE, WRK_AUTH, WRK_HOST), so one script serves every scenario.
-- Each wrk thread runs this file in its own Lua state; wrk then builds the request from these.
wrk.method = os.getenv("WRK_METHOD") or "GET"
local body = os.getenv("WRK_BODY")
if body and body ~= "" then wrk.body = body end
local ct = os.getenv("WRK_CONTENT_TYPE")
if ct and ct ~= "" then wrk.headers["Content-Type"] = ct end
local auth = os.getenv("WRK_AUTH")
if auth and auth ~= "" then wrk.headers["Authorization"] = auth end

local host = os.getenv("WRK_HOST")
if host and host ~= "" then wrk.headers["Host"] = host end
