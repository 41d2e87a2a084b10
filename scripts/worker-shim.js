// patgate's Worker entry (worker-build CUSTOM_SHIM template). A plain module export calling the
// wasm `handle` directly: the default template wraps a WorkerEntrypoint class in Proxies on every
// request, which the benchmark's CPU profile showed on the introspection hot path. The body is
// read here, in JS, so that requests needing no I/O complete synchronously in wasm.
//
// Safety net: patgate is written not to panic, but if the wasm instance ever traps (a Rust panic
// is `unreachable`), the instance is rebuilt so that the next request runs on clean state
// instead of a poisoned one.
import * as imports from "./index_bg.js";
export * from "./index_bg.js";
import wasmModule from "./index.wasm";
$SNIPPET_JS_IMPORTS

function instantiate() {
	const instance = new WebAssembly.Instance(wasmModule, {
		"./index_bg.js": imports,
		$SNIPPET_WASM_IMPORTS
	});
	imports.__wbg_set_wasm(instance.exports);
	instance.exports.__wbindgen_start?.();
}
instantiate();

export { wasmModule };

function recover(e) {
	if (e instanceof WebAssembly.RuntimeError) {
		console.error("patgate: wasm trapped; re-instantiating", e);
		instantiate();
		return new Response('{"error":"server_error"}', {
			status: 500,
			headers: { "content-type": "application/json", "cache-control": "no-store" },
		});
	}
	throw e;
}

/** Bodies declared larger than this are not read (the worker answers 413); keep in sync with
 * MAX_READ_BODY in src/edge/mod.rs. */
const MAX_READ_BODY = 64 * 1024;
const NO_BODY = new Set(["GET", "HEAD", "OPTIONS"]);

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
 * its body must stream to the upstream, so it is not read here; wasm reads it only if no
 * gate route matches. Keep in sync with `gate::route::is_issuer_host`. */
function onGateHost(url, env) {
	const issuer = env.ISSUER;
	if (typeof issuer !== "string" || issuer === "") return false;
	if (issuer !== issuerSeen) {
		issuerSeen = issuer;
		issuerHost = hostName(issuer);
	}
	return hostName(url) !== issuerHost;
}

export default {
	// Not `async`: `handle` returns a Response when the request needed no I/O, else a promise.
	fetch(request, env, ctx) {
		try {
			if (onGateHost(request.url, env)) {
				return imports.handle_gate(request, env, ctx).catch(recover);
			}
			if (NO_BODY.has(request.method)) {
				return imports.handle(request, undefined, env, ctx);
			}
			const declared = Number(request.headers.get("content-length") ?? 0);
			if (declared > MAX_READ_BODY) {
				return imports.handle(request, undefined, env, ctx);
			}
			return request
				.arrayBuffer()
				.then((buf) => imports.handle(request, new Uint8Array(buf), env, ctx))
				.catch(recover);
		} catch (e) {
			return recover(e);
		}
	},
	// Cron Trigger (wrangler.toml [triggers]): the expiry scan, in wasm.
	scheduled(controller, env, ctx) {
		ctx.waitUntil(
			imports.scheduled(env).catch((e) => {
				if (e instanceof WebAssembly.RuntimeError) instantiate();
				throw e;
			}),
		);
	},
};
