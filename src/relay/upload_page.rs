//! The upload page: what an upload link (`--put`, a folder) shows in a browser — a place to drop
//! or pick files, a progress bar and a clear outcome per file.
//!
//! Its uploads go through the relay itself: a browser cannot follow a 307 for a cross-origin
//! `PUT` to a bucket without a CORS rule for the relay's origin, so the page sends each file to
//! the relay with the header [`STREAM_HEADER`], and the relay streams the body to storage
//! under a freshly signed URL instead of redirecting (the same checks apply: no overwrite
//! unless the link allows it, the size cap refused up front from `Content-Length`). Clients
//! without the header (`curl -L -T`) keep getting the redirect. A cross-origin page cannot send
//! the header: it would need a CORS preflight, which the relay never grants.
//!
//! The script is inline, allowed by the response's CSP nonce; nothing else may run.

use std::fmt::Write as _;

use super::index::escape_html;

/// The request header the upload page sends with each `PUT`: "stream this body through the
/// relay instead of redirecting me". Any client may send it (`curl -T f -H 'X-S3share-Stream:
/// 1' URL` works without `-L`).
pub const STREAM_HEADER: &str = "x-s3share-stream";

/// What the upload panel tells the uploader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadInfo {
    /// The link's size cap.
    pub max_size: Option<u64>,
    /// Whether existing files may be replaced.
    pub overwrite: bool,
}

const SCRIPT: &str = r#"(function () {
  "use strict";
  var drop = document.getElementById("drop");
  var pick = document.getElementById("pick");
  var list = document.getElementById("files");
  var max = Number(drop.getAttribute("data-max") || "0");
  var maxText = drop.getAttribute("data-max-text") || max + " bytes";
  var queue = Promise.resolve();
  function row(name) {
    var li = document.createElement("li");
    var label = document.createElement("span");
    label.textContent = name + " ";
    var bar = document.createElement("progress");
    bar.max = 1;
    bar.value = 0;
    var state = document.createElement("span");
    state.className = "state";
    state.textContent = " waiting";
    li.append(label, bar, state);
    list.append(li);
    return { bar: bar, state: state };
  }
  function finish(r, ok, text) {
    r.state.textContent = " " + text;
    r.state.className = "state " + (ok ? "ok" : "err");
    if (ok) { r.bar.value = 1; }
  }
  function send(file, r) {
    return new Promise(function (done) {
      if (max && file.size > max) {
        finish(r, false, "not sent: this link accepts files up to " + maxText);
        return done();
      }
      var x = new XMLHttpRequest();
      x.open("PUT", "./" + encodeURIComponent(file.name));
      x.setRequestHeader("X-S3share-Stream", "1");
      x.upload.onprogress = function (e) {
        if (e.lengthComputable && e.total > 0) {
          r.bar.value = e.loaded / e.total;
          r.state.textContent = " " + Math.floor((100 * e.loaded) / e.total) + " %";
        }
      };
      x.onload = function () {
        if (x.status >= 200 && x.status < 300) {
          finish(r, true, "uploaded");
        } else {
          finish(r, false, "failed: " + (x.responseText.trim() || "HTTP " + x.status));
        }
        done();
      };
      x.onerror = function () { finish(r, false, "failed: the connection broke off"); done(); };
      x.send(file);
    });
  }
  function add(files) {
    Array.prototype.forEach.call(files, function (f) {
      var r = row(f.name);
      queue = queue.then(function () { return send(f, r); });
    });
  }
  pick.addEventListener("change", function () { add(Array.prototype.slice.call(pick.files)); pick.value = ""; });
  drop.addEventListener("dragover", function (e) { e.preventDefault(); drop.className = "over"; });
  drop.addEventListener("dragleave", function () { drop.className = ""; });
  drop.addEventListener("drop", function (e) {
    e.preventDefault();
    drop.className = "";
    add(e.dataTransfer.files);
  });
})();"#;

/// The upload panel (drop zone, file picker, per-file list) and its script.
pub fn render_panel(info: &UploadInfo, nonce: &str) -> String {
    let mut h = String::with_capacity(SCRIPT.len() + 1024);
    let mut rules = Vec::new();
    // The cap as people read it, for the panel and for the script's refusal of a file too big
    // ("up to 10485760 bytes" said nothing at a glance); exact bytes stay in the panel.
    let max_text = info
        .max_size
        .map(|max| indicatif::HumanBytes(max).to_string())
        .unwrap_or_default();
    if let Some(max) = info.max_size {
        rules.push(format!("files up to {max_text} ({max} bytes)"));
    }
    rules.push(
        if info.overwrite {
            "a file with the same name is replaced"
        } else {
            "existing files are never replaced"
        }
        .to_owned(),
    );
    let _ = write!(
        h,
        "<section aria-label=\"upload\"><div id=\"drop\" data-max=\"{}\" data-max-text=\"{}\"><p>Drop files here, or \
<label>pick them: <input type=\"file\" id=\"pick\" multiple></label></p><p><small>{}</small></p></div>\
<ul id=\"files\"></ul></section>\n<script nonce=\"{}\">{SCRIPT}</script>\n",
        info.max_size.unwrap_or(0),
        escape_html(&max_text),
        escape_html(&rules.join("; ")),
        escape_html(nonce),
    );
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panel_states_the_rules_and_carries_the_nonce() {
        let h = render_panel(
            &UploadInfo {
                max_size: Some(10 << 20),
                overwrite: false,
            },
            "abc",
        );
        assert!(h.contains("data-max=\"10485760\""));
        assert!(h.contains("files up to 10.00 MiB"));
        // The script's refusal of a file too big says the size as people read it.
        assert!(h.contains("data-max-text=\"10.00 MiB\""), "{h}");
        assert!(SCRIPT.contains("files up to \" + maxText"));
        assert!(!SCRIPT.contains("max + \" bytes\");\n"));
        assert!(h.contains("never replaced"));
        assert!(h.contains("<script nonce=\"abc\">"));
        assert!(SCRIPT.contains("X-S3share-Stream"));
        assert!(STREAM_HEADER.eq_ignore_ascii_case("X-S3share-Stream"));
        // The script is static: nothing of the request or the listing ends up in it.
        assert!(!SCRIPT.contains("</script"));
    }
}
