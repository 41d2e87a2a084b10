//! The page's one inline style sheet, one inline script and its icon, and the Content Security
//! Policy that allows exactly those (by SHA-256 hash: no `unsafe-inline`, no other origin).

use base64::Engine as _;
use sha2::{Digest, Sha256};

/// The style sheet (inline, allowed by hash).
pub const STYLE: &str = r#"
:root{--fg:#1f2328;--muted:#59636e;--border:#d1d9e0;--bg:#f6f8fa;--accent:#0969da;--danger:#cf222e;--warn-bg:#fff8c5;--warn-fg:#7d4e00;--ok:#1a7f37}
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 -apple-system,BlinkMacSystemFont,"Segoe UI","Noto Sans",Helvetica,Arial,sans-serif;color:var(--fg);background:#fff}
header{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:center;justify-content:space-between;padding:.75rem 1rem;background:var(--bg);border-bottom:1px solid var(--border)}
.brand{font-weight:600;color:var(--fg);text-decoration:none}
.who{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center;color:var(--muted);font-size:.875rem}
.who form{display:inline}
main{max-width:72rem;margin:0 auto;padding:1rem}
h1{font-size:1.5rem;font-weight:600;margin:.5rem 0 1rem}
h2{font-size:1.125rem;margin:1.25rem 0 .5rem}
a{color:var(--accent)}
.lead{color:var(--muted)}
.bar{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center;justify-content:space-between;margin-bottom:1rem}
.btn{display:inline-block;padding:.375rem .875rem;font:inherit;font-size:.875rem;font-weight:500;line-height:1.5;border:1px solid var(--border);border-radius:6px;background:var(--bg);color:var(--fg);text-decoration:none;cursor:pointer}
.btn:hover{background:#eef1f4}
.btn-primary{background:#1f883d;border-color:#1a7f37;color:#fff}
.btn-primary:hover{background:#1a7f37}
.btn-danger{color:var(--danger)}
.btn-danger-solid{background:var(--danger);border-color:#a40e26;color:#fff}
.btn-link{border:0;background:none;padding:0;color:var(--accent);text-decoration:underline;font-size:.875rem}
:focus-visible{outline:2px solid var(--accent);outline-offset:2px}
table{width:100%;border-collapse:collapse;font-size:.9375rem}
th,td{text-align:left;vertical-align:top;padding:.625rem .5rem;border-bottom:1px solid var(--border)}
th{font-size:.8125rem;color:var(--muted);font-weight:600;white-space:nowrap}
td time,td.place{white-space:nowrap}
.buttons{display:flex;flex-wrap:wrap;gap:1rem;align-items:center;margin-top:1rem}
td.actions{white-space:nowrap}
td.actions a{display:block;margin:0 0 .25rem}
td.token{min-width:12.5rem}
@media (min-width:641px){td.scopes .scope{display:block;width:max-content}}
.name{font-weight:600;overflow-wrap:break-word}
code,.scope{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.8125rem}
.scope{display:inline-block;margin:0 .25rem .25rem 0;padding:0 .375rem;border:1px solid var(--border);border-radius:1em;background:var(--bg)}
.badge{display:inline-block;padding:0 .5rem;border-radius:1em;font-size:.8125rem;font-weight:500;border:1px solid currentColor}
.s-active{color:var(--ok)}
.s-expired,.s-revoked,.s-inactive{color:var(--muted)}
.warn{background:var(--warn-bg);color:var(--warn-fg);padding:0 .25rem;border-radius:4px;font-weight:500}
.muted{color:var(--muted);font-size:.875rem}
.notice{padding:.75rem 1rem;border:1px solid #d4a72c;background:var(--warn-bg);color:var(--warn-fg);border-radius:6px;margin:1rem 0}
.error-box{padding:.75rem 1rem;border:1px solid #ff8182;background:#ffebe9;color:#82071e;border-radius:6px;margin:1rem 0}
.field{margin:0 0 1.25rem}
.field>label,legend{display:block;font-weight:600;margin-bottom:.25rem}
input[type=text],input[type=date],select{font:inherit;padding:.375rem .5rem;border:1px solid var(--border);border-radius:6px;max-width:100%}
input[type=text]{width:28rem}
.hint{color:var(--muted);font-size:.875rem;margin:.25rem 0 0}
.err{color:var(--danger);font-size:.875rem;font-weight:500;margin:.25rem 0 0}
fieldset{border:1px solid var(--border);border-radius:6px;padding:.5rem 1rem 1rem;margin:0 0 1.25rem}
fieldset fieldset{margin:.5rem 0 0;padding:.25rem .75rem .5rem}
fieldset fieldset legend{font-weight:500;font-size:.9375rem}
.check{display:flex;gap:.5rem;align-items:center;margin:.25rem 0}
.check+.hint{margin:0 0 .75rem 1.5rem}
.token-box{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center;margin:1rem 0}
.token-box input{flex:1 1 20rem;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.875rem;padding:.5rem;border:1px solid var(--ok);border-radius:6px;background:#dafbe1;color:var(--fg)}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem}
dt{color:var(--muted)}
dd{margin:0;min-width:0;overflow-wrap:anywhere}
.consent-scopes{list-style:none;padding:0}
.consent-scopes li{margin:0 0 .5rem}
.pager{display:flex;gap:1rem;margin:1rem 0}
.sort{display:flex;flex-wrap:wrap;gap:.25rem .75rem;align-items:baseline;margin:.5rem 0}
.sort ul{display:flex;flex-wrap:wrap;gap:.25rem .75rem;list-style:none;margin:0;padding:0}
.sort a[aria-current]{font-weight:600;color:var(--fg);text-decoration:none;border-bottom:2px solid currentColor}
.usage-link{font-size:.875rem}
.usage{margin:1rem 0;max-width:40rem}
.usage figcaption{margin:0 0 .5rem}
.usage svg{display:block;width:100%;height:auto;overflow:visible}
.usage .axis{stroke:var(--border);stroke-width:1}
.usage .b{fill:var(--accent)}
.usage .hit{fill:transparent}
.usage .day:hover .b,.usage .day:focus .b{fill:#0550ae}
.usage .day:focus{outline:none}
.usage .day:focus .hit{stroke:var(--accent);stroke-width:.75}
.usage .v{font-size:6px;fill:var(--fg);text-anchor:middle;opacity:0}
.usage .day:hover .v,.usage .day:focus .v{opacity:1}
.axis-labels{display:flex;justify-content:space-between;color:var(--muted);font-size:.8125rem}
.usage details{margin:.5rem 0}
.usage table{width:auto}
.visually-hidden{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
@media (max-width:640px){
 input[type=text]{width:100%}
 thead{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
 table,tbody,tr,td{display:block;width:100%}
 tr{border:1px solid var(--border);border-radius:6px;margin:0 0 .75rem;padding:.25rem .5rem}
 td{border:0;padding:.25rem 0}
 td[data-label]::before{content:attr(data-label) ": ";color:var(--muted);font-size:.8125rem}
 td.actions a{display:inline;margin:0 .75rem 0 0}
 .usage .v{font-size:11px}
 dl{grid-template-columns:1fr}
 dd{margin:0 0 .5rem}
 h1{overflow-wrap:anywhere}
}
"#;

/// The script (inline, allowed by hash): the Copy button (Clipboard API), live relative times, the
/// custom date shown only when chosen, and no second submission of a form by a double click.
/// Everything works without it.
pub const SCRIPT: &str = r#"
(function(){
document.querySelectorAll("button[data-copy]").forEach(function(b){
 var target=document.getElementById(b.getAttribute("data-copy"));
 if(!target||!navigator.clipboard)return;
 b.hidden=false;
 b.addEventListener("click",function(){
  navigator.clipboard.writeText(target.value).then(function(){b.textContent="Copied";},function(){target.select();b.textContent="Press Ctrl+C to copy";});
 });
});
document.querySelectorAll("form[method=post]").forEach(function(f){
 f.addEventListener("submit",function(){var b=f.querySelector("button[type=submit]");if(b)setTimeout(function(){b.disabled=true;},0);});
});
var sel=document.getElementById("expiration"),custom=document.getElementById("custom-date-field");
if(sel&&custom){var sync=function(){custom.hidden=sel.value!=="custom";};sel.addEventListener("change",sync);sync();}
function rel(t){
 var s=Math.round((Date.now()-Date.parse(t))/1000);
 if(s<60)return "just now";
 var units=[[86400,"day"],[3600,"hour"],[60,"minute"]];
 for(var i=0;i<units.length;i++){var n=Math.floor(s/units[i][0]);if(n>=1)return n+" "+units[i][1]+(n===1?"":"s")+" ago";}
}
function tick(){document.querySelectorAll("time[data-ago]").forEach(function(e){var r=rel(e.getAttribute("datetime"));if(r)e.textContent=r;});}
setInterval(tick,30000);
})();
"#;

/// The icon (`/favicon.ico`, so that browsers' automatic request does not 404): a small key.
pub const ICON_SVG: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><circle cx="5" cy="8" r="3.2" fill="none" stroke="#0969da" stroke-width="2"/><path d="M8 8h7M12.5 8v3M14.5 8v2" stroke="#0969da" stroke-width="2" fill="none"/></svg>"##;

fn sha256_source(text: &str) -> String {
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()))
    )
}

/// The Content Security Policy of every page: nothing but the hashed inline script and style,
/// the icon, forms posting to this origin; no framing, no `<base>`.
pub fn csp() -> String {
    csp_with_form_target("")
}

/// [`csp`] whose forms may also end at `target` (the consent page: its answer redirects to the
/// application's redirect URI, which browsers check against `form-action`). Only characters of
/// a URI origin are kept.
pub fn csp_with_form_target(target: &str) -> String {
    let target: String = target
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || ":/.-[]+".contains(*c))
        .collect();
    let extra = if target.is_empty() {
        String::new()
    } else {
        format!(" {target}")
    };
    format!(
        "default-src 'none'; script-src {}; style-src {}; img-src 'self'; form-action 'self'{extra}; \
         base-uri 'none'; frame-ancestors 'none'",
        sha256_source(SCRIPT),
        sha256_source(STYLE)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csp_allows_exactly_the_inline_assets() {
        let c = csp();
        assert!(c.starts_with("default-src 'none'; script-src 'sha256-"));
        for must in [
            "form-action 'self'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ] {
            assert!(c.contains(must), "{must}");
        }
        for never in ["unsafe", "*", "http", "data:"] {
            assert!(!c.contains(never), "{never}");
        }
        // Independently computed: sha256 of the script, base64.
        let h = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(SCRIPT));
        assert!(c.contains(&format!("script-src 'sha256-{h}'")));
        assert!(
            !SCRIPT.contains("</script"),
            "the script cannot close its own element"
        );
        assert!(!STYLE.contains("</style"));
    }
}
