// patgate's Worker entry (worker-build CUSTOM_SHIM template). A plain module export calling the
// wasm `fetch` directly: the default template wraps a WorkerEntrypoint class in Proxies on every
// request, which the benchmark's CPU profile showed on the introspection hot path.
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

export default {
	async fetch(request, env, ctx) {
		try {
			return await imports.fetch(request, env, ctx);
		} catch (e) {
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
	},
};
