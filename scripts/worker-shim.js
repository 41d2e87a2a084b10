// patgate's Worker entry (worker-build CUSTOM_SHIM template). A plain module export calling the
// wasm `handle` directly: the default template wraps a WorkerEntrypoint class in Proxies on every
// request, which the benchmark's CPU profile showed on the introspection hot path. The body is
// read here, in JS, so that requests needing no I/O complete synchronously in wasm.
//
// Two safety nets live here: request bodies are read so that a refused upload never disturbs
// another request ("Request bodies"), and a wasm trap ends its instance cleanly ("Wasm traps").
import * as imports from "./index_bg.js";
import { LastUsed as WasmLastUsed } from "./index_bg.js";
export * from "./index_bg.js";
import wasmModule from "./index.wasm";
$SNIPPET_JS_IMPORTS

function importObject() {
	return {
		"./index_bg.js": imports,
		$SNIPPET_WASM_IMPORTS
	};
}

// --- Wasm traps ---------------------------------------------------------------------------------
// patgate is written not to panic, but a Rust panic (or an allocation failure) traps the wasm
// instance, and a trapped instance must never serve again: the trap skipped destructors, so
// borrows and the shadow stack stay where they were. A trap is seen
// - synchronously, as a `WebAssembly.RuntimeError` thrown by `handle`/`handle_gate`/...;
// - asynchronously, when the request future traps in a wake-up: the panic hook
//   (`edge::start`) then rejects that request's promise with a RuntimeError (so it is answered)
//   and calls `__patgate_poisoned`; a trap without a panic (an allocation failure) surfaces as an
//   unhandled RuntimeError rejection, and the request whose wake-up trapped is failed then.
// From then on the instance is *poisoned*: no new request enters it. The first request to arrive
// waits (at most RECOVERY_WAIT_MS) for the requests still in flight on it to finish there,
// untouched; then the instance is reset (a fresh one from the same module) and every new request
// runs on that. A request still parked on the old instance at the reset (one that trapped without
// a panic, or was slower than the wait) is answered `503 temporarily_unavailable`. Work handed to
// `waitUntil` by the old instance (last-use reports, cache writes, delayed purges, webhook
// fan-out: all best effort with their own bounds) is dropped.
//
// The reset is wasm-bindgen's own (`__wbg_reset_state`, emitted because the worker crate uses
// `schedule_reinit`): it bumps the glue's instance id, so a callback or a finalizer of the old
// instance can never run against the new one ("Cannot invoke closure from previous WASM
// instance"), drops the glue's cached memory views and instantiates the module again. Its glue for
// the bundler target refers to `wasmModule`, `__wbg_get_imports` and `wasmInstance` without
// defining them; they are provided below as globals. It is triggered through the glue's reinit
// import (the one `schedule_reinit` calls) and one harmless export call, at a moment chosen here.
const RECOVERY_WAIT_MS = 5_000;
const reinit = Object.keys(imports).find((k) => k.startsWith("__wbg___wbindgen_reinit_"));
let poisoned = false;
/** Bumped by each reset; a Durable Object rebuilds its wasm object when it changes. */
let generation = 0;

function instantiate() {
	const instance = new WebAssembly.Instance(wasmModule, importObject());
	globalThis.wasmInstance = instance;
	imports.__wbg_set_wasm(instance.exports);
	instance.exports.__wbindgen_start?.();
}
globalThis.wasmModule = wasmModule;
globalThis.__wbg_get_imports = importObject;
instantiate();

export { wasmModule };

function poison(e) {
	if (poisoned) return;
	poisoned = true;
	console.error("patgate: wasm trapped; no new request enters this instance", e);
}
// Called by the panic hook (`edge::start`) before the trap.
globalThis.__patgate_poisoned = poison;
globalThis.addEventListener?.("unhandledrejection", (event) => {
	if (!(event.reason instanceof WebAssembly.RuntimeError)) return;
	poison(event.reason);
	try {
		imports.fail_trapped(); // answers the request whose wake-up trapped
	} catch {}
});

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Requests still parked on the poisoned instance (asking it is a read of one table). */
function parkedOnOld() {
	try {
		return imports.parked_requests();
	} catch {
		return 0;
	}
}

/** Thrown when a trapped instance cannot be reset: answered 503, and the instance stays unused. */
const STUCK = new Error("patgate: wasm trapped and this build cannot reset the instance");

/** Resolves once the instance is usable again: waits for the poisoned instance's requests in
 * flight (bounded), then resets it. */
async function recovered() {
	const deadline = Date.now() + RECOVERY_WAIT_MS;
	while (poisoned && parkedOnOld() > 0 && Date.now() < deadline) await sleep(5);
	if (!poisoned) return;
	if (reinit === undefined) throw STUCK; // no reinit machinery in the glue (a wasm-bindgen change)
	try {
		imports.abandon_requests();
	} catch {}
	try {
		imports[reinit]();
		imports.parked_requests(); // any export call: the glue's call guard runs the reset first
	} catch (e) {
		console.error("patgate: the wasm instance could not be reset", e);
		throw STUCK;
	}
	poisoned = false;
	generation++;
	console.error("patgate: wasm instance reset after a trap");
}

/** A request that ran into a trap or was abandoned by a reset: its answer; other errors rethrown. */
function failed(e) {
	if (e === STUCK) return jsonError(503, '{"error":"temporarily_unavailable"}');
	if (e instanceof WebAssembly.RuntimeError) {
		if (e.message === "patgate: abandoned by a reset") {
			return jsonError(503, '{"error":"temporarily_unavailable"}');
		}
		poison(e);
		return jsonError(500, '{"error":"server_error"}');
	}
	throw e;
}

function jsonError(status, body) {
	return new Response(body, {
		status,
		headers: { "content-type": "application/json", "cache-control": "no-store" },
	});
}

/** For the queue and cron entries: a trap poisons the instance and is rethrown (the platform
 * retries the batch; the cron run logs it). */
function enteredRethrow(f) {
	const fail = (e) => {
		if (e instanceof WebAssembly.RuntimeError) poison(e);
		throw e;
	};
	if (poisoned) return recovered().then(f).then(undefined, fail);
	try {
		return Promise.resolve(f()).then(undefined, fail);
	} catch (e) {
		return fail(e);
	}
}

// --- Request bodies -----------------------------------------------------------------------------
// patgate's own endpoints take small bodies: forms of at most 8 KiB on /oauth/*, JSON of at most
// 16 KiB elsewhere. Keep in sync with `http::body_limit` in src/http.rs (the end-to-end suite checks
// both limits through this shim). A body is kept only up to its endpoint's limit:
// - a declared Content-Length over the limit is refused from the header, nothing read: workerd
//   sends the answer only once the declared body has arrived, so the connection stays clean;
// - a body without Content-Length (chunked) is read chunk by chunk; past the limit nothing more is
//   kept, but the rest is still read, and dropped, until the body ends (`drain`), and only then is
//   the refusal answered;
// - a body that fails while being read (malformed chunked encoding, a client that goes away) is a
//   400; its connection is gone anyway.
// The refusal itself is answered by the wasm `handle` (its one error mapping: status, JSON body,
// Cache-Control/Pragma), told why through its last argument.
//
// Why drain: answered while a chunked upload is still coming, the runtime discards at most 64 KiB
// or one second of the rest (the `canceledUploadGrace*` settings of workerd's HTTP server), then
// drops the connection, and no `Connection: close` went out with the answer (workerd writes the
// connection headers itself; a Worker cannot). Under `wrangler dev` that connection is one of the
// pool its local proxy keeps to the Worker: the proxy hands the next request to the dropped
// connection and answers it `503 Your worker restarted mid-request` (a GET or HEAD is retried when
// the next request arrives). So one oversized upload failed an unrelated request. Read to its end,
// the refused request leaves its connection clean for the next one.
// The drain is bounded by DRAIN_BYTES past the limit, unless the var DEV_DRAIN_REFUSED_BODIES is
// "true" (set by the local dev configuration only), and by the client: it ends when the body ends or
// fails. Past the bound the rest is cancelled and the refusal answered at once; the runtime then
// closes that connection. On Cloudflare's edge every client has its own connection to the Worker,
// so that costs only the sender's connection, and the bound caps the work a sender can cause
// (about 6 ms of runtime CPU per MiB drained, measured under workerd). Under `wrangler dev` without
// the var, an upload more than DRAIN_BYTES over the limit can still cost the next request its
// connection. A client that stalls mid-body waits for its own answer and holds nothing but its
// own connection (no CPU while waiting).
//
// Left to the local proxy: a GET or HEAD sent with a declared body that the client abandons
// midway. workerd answers a declared body only once all of it has arrived, so the proxy's fetch
// fails, and the proxy's retry of that GET (with a body it has used up) throws while it handles
// the next request, which then gets `500 Cannot reconstruct a Request with a used body`. Nothing in
// the Worker can answer earlier; deployed, there is no such proxy.
//
// A chunked body nobody reads is drained the same way before the answer: a GET, HEAD or OPTIONS
// sent with one, and a gate request refused before it was forwarded (its body stream untouched).
const MAX_FORM_BODY = 8 * 1024;
const MAX_JSON_BODY = 16 * 1024;
const MAX_REPORT_BODY = 64 * 1024;
const DRAIN_BYTES = 1024 * 1024;
const NO_BODY = new Set(["GET", "HEAD", "OPTIONS"]);
const EMPTY = new Uint8Array(0);
const TOO_LARGE = "too_large";
const UNREADABLE = "unreadable";

/** The body limit of the request's endpoint, from the URL without parsing it (hot path). */
function bodyLimit(url) {
	const pathStart = url.indexOf("/", url.indexOf("//") + 2);
	if (pathStart >= 0 && url.startsWith("/oauth/", pathStart)) return MAX_FORM_BODY;
	if (pathStart >= 0 && url.startsWith("/secret-scanning/", pathStart)) return MAX_REPORT_BODY;
	return MAX_JSON_BODY;
}

/** Resolves to a Uint8Array, or to TOO_LARGE / UNREADABLE. */
function readBody(request, limit, env) {
	const declared = request.headers.get("content-length");
	if (declared !== null) {
		// The runtime enforces the declared length: reading all of it reads at most `limit` bytes.
		if (!(Number(declared) <= limit)) return Promise.resolve(TOO_LARGE);
		return request.arrayBuffer().then(
			(buf) => new Uint8Array(buf),
			() => UNREADABLE,
		);
	}
	if (request.body === null) return Promise.resolve(EMPTY);
	return readChunked(request.body.getReader(), limit, env).catch(() => UNREADABLE);
}

async function readChunked(reader, limit, env) {
	const chunks = [];
	let total = 0;
	for (;;) {
		const { done, value } = await reader.read();
		if (done) break;
		total += value.byteLength;
		if (total > limit) {
			await drain(reader, total - limit, env);
			return TOO_LARGE;
		}
		chunks.push(value);
	}
	if (chunks.length === 1) return chunks[0];
	const out = new Uint8Array(total);
	let at = 0;
	for (const c of chunks) {
		out.set(c, at);
		at += c.byteLength;
	}
	return out;
}

/** Reads and drops the rest of a body (`past` bytes over the limit read so far) until it ends or
 * fails; past the byte bound, cancels the rest. */
async function drain(reader, past, env) {
	const maxBytes = env.DEV_DRAIN_REFUSED_BODIES === "true" ? Infinity : DRAIN_BYTES;
	try {
		while (past <= maxBytes) {
			const { done, value } = await reader.read();
			if (done) return;
			past += value.byteLength;
		}
		reader.cancel().catch(() => {});
	} catch {
		// the body failed (malformed, or the client went away): nothing more to read
	}
}

/** `answer` (a Response or a promise of one), after the chunked body of `request` nobody read, if
 * any, has been drained. Nothing to do for a request without a body or with a declared length. */
function afterUnreadBody(request, answer, env) {
	const body = request.body;
	if (body === null || body.locked || request.headers.has("content-length")) return answer;
	return drain(body.getReader(), 0, env).then(() => answer);
}

/** Host name of a serialized URL (no port, lowercase), without a URL parse. */
function hostName(url) {
	const start = url.indexOf("//") + 2;
	let end = start;
	while (end < url.length && !"/?#".includes(url[end])) end++;
	const authority = url.slice(start, end);
	const cut = authority.startsWith("[") ? authority.indexOf("]") + 1 : authority.lastIndexOf(":");
	return (cut > 0 ? authority.slice(0, cut) : authority).toLowerCase();
}

let issuerSeen, issuerHost;
/** Gate traffic (README "Protect an API") is any request to a host other than the issuer's:
 * its body must stream to the upstream, so it is not read here; if no gate route matches, wasm
 * answers `undefined` and `own` reads the body like for the issuer's host (one reader, one set
 * of limits). Keep in sync with `gate::matching::is_issuer_host`. */
function onGateHost(url, env) {
	const issuer = env.ISSUER;
	if (typeof issuer !== "string" || issuer === "") return false;
	if (issuer !== issuerSeen) {
		issuerSeen = issuer;
		issuerHost = hostName(issuer);
	}
	return hostName(url) !== issuerHost;
}

/** patgate's own endpoints: the body is read here, at most the endpoint's limit, then `handle`. */
function own(request, env, ctx) {
	if (NO_BODY.has(request.method)) {
		return afterUnreadBody(request, imports.handle(request, undefined, env, ctx), env);
	}
	return readBody(request, bodyLimit(request.url), env).then((body) => {
		// The instance may have trapped while this body was being read.
		if (poisoned) return recovered().then(() => withBody(request, env, ctx, body));
		return withBody(request, env, ctx, body);
	});
}

function withBody(request, env, ctx, body) {
	return typeof body === "string"
		? imports.handle(request, undefined, env, ctx, body)
		: imports.handle(request, body, env, ctx);
}

/** The gate's answer (the upstream's, or a refusal: then the unread body is drained first), or,
 * when no gate route matches (`undefined`), patgate's own endpoint. */
function gateOrOwn(request, env, ctx, answer) {
	return answer === undefined ? own(request, env, ctx) : afterUnreadBody(request, answer, env);
}

function serve(request, env, ctx) {
	if (onGateHost(request.url, env)) {
		const answer = imports.handle_gate(request, env, ctx);
		if (answer instanceof Promise) return answer.then((a) => gateOrOwn(request, env, ctx, a));
		return gateOrOwn(request, env, ctx, answer);
	}
	return own(request, env, ctx);
}

/** The Durable Object class the runtime constructs: the wasm object is built on first use and
 * again after an instance reset (a wasm object belongs to the instance that made it). */
export class LastUsed {
	constructor(state, env) {
		this.args = [state, env];
		this.generation = -1;
		this.inner = null;
	}
	wasm() {
		if (this.generation !== generation) {
			this.inner = new WasmLastUsed(...this.args);
			this.generation = generation;
		}
		return this.inner;
	}
	fetch(request) {
		return enteredRethrow(() => this.wasm().fetch(request));
	}
	alarm(info) {
		return enteredRethrow(() => this.wasm().alarm(info));
	}
}

export default {
	// Not `async`: `handle` and `handle_gate` return a Response when the request needed no I/O,
	// else a promise (src/edge/executor.rs).
	fetch(request, env, ctx) {
		if (poisoned) return recovered().then(() => serve(request, env, ctx)).then(undefined, failed);
		try {
			const answer = serve(request, env, ctx);
			return answer instanceof Promise ? answer.then(undefined, failed) : answer;
		} catch (e) {
			return failed(e);
		}
	},
	// Queue consumer (wrangler.toml [[queues.consumers]]): webhook deliveries, in wasm, which acks
	// or retries (with a delay) each message itself.
	queue(batch, env, ctx) {
		return enteredRethrow(() => imports.queue(batch, env));
	},
	// Cron Trigger (wrangler.toml [triggers]): the expiry scan, in wasm.
	scheduled(controller, env, ctx) {
		ctx.waitUntil(enteredRethrow(() => imports.scheduled(env)));
	},
};
