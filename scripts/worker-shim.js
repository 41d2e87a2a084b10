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

// --- Request bodies -----------------------------------------------------------------------------
// patgate's own endpoints take small bodies: forms of at most 8 KiB on /oauth/*, JSON of at most
// 16 KiB elsewhere. Keep in sync with `http::body_limit` in src/http.rs (the end-to-end suite checks
// both limits through this shim). A body is read only up to its endpoint's limit:
// - a declared Content-Length over the limit is refused before anything is read;
// - a body without Content-Length (chunked) is read chunk by chunk and, past the limit, nothing more
//   is kept: at most DISCARD_PAST_LIMIT more bytes are read and dropped, then the rest is cancelled
//   (never drained) and the request refused;
// - a body that cannot be read (malformed chunked encoding, a client that goes away) is a 400.
// The refusal itself is answered by the wasm `handle` (its one error mapping: status, JSON body,
// Cache-Control/Pragma), told why through its last argument.
const MAX_FORM_BODY = 8 * 1024;
const MAX_JSON_BODY = 16 * 1024;
const MAX_REPORT_BODY = 64 * 1024;
const NO_BODY = new Set(["GET", "HEAD", "OPTIONS"]);
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
function readBody(request, limit) {
	const declared = request.headers.get("content-length");
	if (declared !== null) {
		// The runtime enforces the declared length: reading all of it reads at most `limit` bytes.
		if (!(Number(declared) <= limit)) return Promise.resolve(TOO_LARGE);
		return request.arrayBuffer().then(
			(buf) => new Uint8Array(buf),
			() => UNREADABLE,
		);
	}
	if (request.body === null) return Promise.resolve(new Uint8Array(0));
	return readChunked(request.body.getReader(), limit).catch(() => UNREADABLE);
}

/** Past the limit, at most this much more is read (and dropped, never kept) before the rest is
 * cancelled: a body slightly over the limit is consumed to its end, which keeps the connection
 * usable (under `wrangler dev`, cancelling a body whose last bytes are still in flight left the
 * answer waiting for them); a larger one is cut off here. */
const DISCARD_PAST_LIMIT = 64 * 1024;

async function readChunked(reader, limit) {
	const chunks = [];
	let total = 0;
	for (;;) {
		const { done, value } = await reader.read();
		if (done) break;
		total += value.byteLength;
		if (total > limit) {
			while (total <= limit + DISCARD_PAST_LIMIT) {
				const next = await reader.read();
				if (next.done) return TOO_LARGE;
				total += next.value.byteLength;
			}
			reader.cancel().catch(() => {});
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
		return imports.handle(request, undefined, env, ctx);
	}
	return readBody(request, bodyLimit(request.url))
		.then((body) =>
			typeof body === "string"
				? imports.handle(request, undefined, env, ctx, body)
				: imports.handle(request, body, env, ctx),
		)
		.catch(recover);
}

export default {
	// Not `async`: `handle` and `handle_gate` return a Response when the request needed no I/O,
	// else a promise (src/edge/executor.rs).
	fetch(request, env, ctx) {
		try {
			if (onGateHost(request.url, env)) {
				// The answer, `undefined` (no gate route: one of patgate's own endpoints), or a
				// promise of either.
				const answer = imports.handle_gate(request, env, ctx);
				if (answer instanceof Promise) {
					return answer.then((a) => a ?? own(request, env, ctx)).catch(recover);
				}
				return answer ?? own(request, env, ctx);
			}
			return own(request, env, ctx);
		} catch (e) {
			return recover(e);
		}
	},
	// Queue consumer (wrangler.toml [[queues.consumers]]): webhook deliveries, in wasm, which acks
	// or retries (with a delay) each message itself.
	queue(batch, env, ctx) {
		return imports.queue(batch, env).catch((e) => {
			if (e instanceof WebAssembly.RuntimeError) instantiate();
			throw e;
		});
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
