//! Folder pages: what a folder link (`/<token>/<prefix>/`) shows in a browser — an HTML index
//! of one level (sub-folders, files with size and date, one page of the listing at a time,
//! continued with `?page=<continuation token>`), or the same listing as JSON for
//! `Accept: application/json`.
//!
//! Every name is HTML-escaped and every link percent-encoded segment by segment with the same
//! encoder the links are minted with, so keys with `<`, `"`, `&`, `#`, `?`, `%`, `+`, spaces or
//! unicode show and open as themselves. Links are relative (`./name`, `../`): they keep the
//! token of the page they are on and work behind a reverse proxy with a path prefix. Keys the
//! relay refuses to serve (dot or empty segments, control characters) are listed without a
//! link. The reserved prefix [`RESERVED_PREFIX`] (the link ledger) is never shown.
//!
//! The pages need no script: their CSP allows only a style with the response's nonce (and, on
//! upload links, the upload script with the same nonce, see [`super::upload_page`]).

use std::fmt::Write as _;
use std::time::SystemTime;

use crate::s3::ObjectEntry;

use super::path;

pub use crate::s3::RESERVED_PREFIX;

/// The longest continuation token taken from a `?page=` query.
pub const MAX_PAGE_TOKEN: usize = 1024;

/// How many entries one index page shows at most.
pub const DEFAULT_PAGE_SIZE: usize = 500;

/// One page of one folder level, as the handler got it from storage.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FolderPage {
    /// Sub-folders: full prefixes ending with `/`.
    pub folders: Vec<String>,
    /// Files: full keys.
    pub files: Vec<ObjectEntry>,
    /// The continuation token of the next page, when there is one.
    pub next: Option<String>,
}

impl FolderPage {
    /// Leaves out what must never be shown: the reserved prefix, the folder's own marker, and
    /// anything that is not inside `folder` (a server that ignores the prefix).
    pub fn hide_reserved(&mut self, folder: &str) {
        self.folders
            .retain(|f| !is_reserved(f) && f.starts_with(folder) && f.len() > folder.len());
        self.files
            .retain(|o| !is_reserved(&o.key) && o.key.starts_with(folder) && o.key != folder);
    }

    /// Puts folders and files in the order people expect and the desktop app shows: `f2`
    /// before `f10`, case aside (storage lists in byte order: f1, f10, f100, f2). Within the
    /// page: a listing comes from storage a page at a time, in its own order.
    pub fn sort_for_people(&mut self) {
        fn order(a: &str, b: &str) -> std::cmp::Ordering {
            crate::names::natural_cmp(&a.to_lowercase(), &b.to_lowercase()).then_with(|| a.cmp(b))
        }
        self.folders.sort_by(|a, b| order(a, b));
        self.files.sort_by(|a, b| order(&a.key, &b.key));
    }
}

/// Lists one page of one level of `prefix` (ListObjectsV2 with `/` as delimiter), continuing
/// after `continuation` (a token storage handed out; the prefix is sent again with it, so a
/// forged token cannot list anything outside the folder).
pub(crate) async fn list_folder_page(
    client: &crate::s3::S3Client,
    bucket: &str,
    prefix: &str,
    continuation: Option<&str>,
    max: usize,
) -> crate::Result<FolderPage> {
    let sdk = client.try_for_bucket(bucket).await?;
    let out = sdk
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .delimiter("/")
        .encoding_type(aws_sdk_s3::types::EncodingType::Url)
        .max_keys(i32::try_from(max.clamp(1, 1000)).unwrap_or(1000))
        .set_continuation_token(continuation.map(str::to_owned))
        .send()
        .await
        .map_err(|e| {
            crate::s3::sdk_error(
                "ListObjectsV2",
                &format!("s3://{bucket}/{prefix}"),
                &client.endpoint_label(),
                e,
            )
        })?;
    let name = crate::s3::Names::of(&out);
    let folders = out
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix().map(|p| name.decoded(p)))
        .collect();
    let files = out
        .contents()
        .iter()
        .filter_map(|o| {
            Some(ObjectEntry {
                key: name.decoded(o.key()?),
                size: o.size().unwrap_or(0).max(0) as u64,
                modified: o
                    .last_modified()
                    .and_then(|t| SystemTime::try_from(*t).ok()),
                etag: o.e_tag().map(|t| t.trim_matches('"').to_owned()),
            })
        })
        .collect();
    let next = if out.is_truncated() == Some(true) {
        out.next_continuation_token().map(str::to_owned)
    } else {
        None
    };
    let mut page = FolderPage {
        folders,
        files,
        next,
    };
    page.hide_reserved(prefix);
    Ok(page)
}

pub use crate::s3::is_reserved;

/// What a page shows besides the listing.
#[derive(Debug, Clone)]
pub struct PageInfo<'a> {
    /// The bucket: the name of its top level, which has no folder name of its own.
    pub bucket: &'a str,
    /// The link's scope (a prefix ending with `/`): breadcrumbs never go above it.
    pub scope: &'a str,
    /// The folder shown (the scope or a folder inside it).
    pub folder: &'a str,
    /// The continuation token of this page, when it is not the first.
    pub page: Option<&'a str>,
    /// The nonce that the CSP allows for this response's style and script.
    pub nonce: &'a str,
    /// The link allows reading (listing, downloads).
    pub read: bool,
    /// The upload panel, on links that allow PUT.
    pub upload: Option<super::upload_page::UploadInfo>,
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Shown, not interpreted: a newline or tab in a key stays visible as such.
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c if c.is_control() || is_bidi_control(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// The characters that reorder the text around them (embeddings, overrides, isolates and the
/// directional marks): shown raw, `invoice\u{202e}gpj.exe` reads as "invoiceexe.jpg". They are
/// format characters, not control characters, so `char::is_control` misses them.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// The relative link from `folder` to `key` (a file, or a sub-folder ending with `/`) inside
/// it, or `None` when the relay would refuse that path (it is listed without a link).
pub fn entry_href(folder: &str, key: &str) -> Option<String> {
    let name = key.strip_prefix(folder)?;
    if name.is_empty() || is_reserved(key) {
        return None;
    }
    // Checked exactly as a request for it would be.
    let probe = format!("/t/{}", path::encode_key(key));
    match path::parse(&probe) {
        Ok(p) if p.key == key => {}
        _ => return None,
    }
    // `./` first, so that a name like `a:b` is never read as a URL scheme.
    Some(format!("./{}", path::encode_key(name)))
}

/// The `?page=` value of a query string, decoded; `Err` for a malformed one.
pub fn page_token(query: Option<&str>) -> Result<Option<String>, &'static str> {
    let Some(q) = query else { return Ok(None) };
    for pair in q.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k != "page" {
            continue;
        }
        let v = percent_encoding::percent_decode_str(v)
            .decode_utf8()
            .map_err(|_| "the page token is not UTF-8")?;
        if v.is_empty() {
            return Ok(None);
        }
        if v.len() > MAX_PAGE_TOKEN || v.chars().any(char::is_control) {
            return Err("bad page token");
        }
        return Ok(Some(v.into_owned()));
    }
    Ok(None)
}

/// The `?page=` link to the page after this one.
pub fn next_href(token: &str) -> String {
    format!(
        "?page={}",
        percent_encoding::utf8_percent_encode(token, percent_encoding::NON_ALPHANUMERIC)
    )
}

/// Whether the client asked for JSON rather than a page (`Accept` naming `application/json`
/// with a higher preference than `text/html`).
pub fn wants_json(accept: Option<&str>) -> bool {
    let Some(accept) = accept else { return false };
    let mut json = None::<f32>;
    let mut html = None::<f32>;
    for item in accept.split(',') {
        let mut params = item.split(';');
        let ty = params.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = params
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        match ty.as_str() {
            "application/json" => json = Some(json.map_or(q, |j| j.max(q))),
            "text/html" => html = Some(html.map_or(q, |h| h.max(q))),
            _ => {}
        }
    }
    match (json, html) {
        (Some(j), Some(h)) => j > 0.0 && j > h,
        (Some(j), None) => j > 0.0,
        _ => false,
    }
}

/// Whether a browser asked for a page (`Accept` naming `text/html`).
pub fn wants_html(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.to_ascii_lowercase().contains("text/html"))
}

fn display_name(folder: &str, key: &str) -> String {
    key.strip_prefix(folder).unwrap_or(key).to_owned()
}

fn date(t: Option<SystemTime>) -> String {
    t.map(|t| {
        chrono::DateTime::<chrono::Utc>::from(t)
            .format("%Y-%m-%d %H:%M UTC")
            .to_string()
    })
    .unwrap_or_default()
}

/// Sizes as people read them (binary units), exact bytes in the title.
fn size(n: u64) -> String {
    indicatif::HumanBytes(n).to_string()
}

/// The folder's title: its last segment (`docs` for `shared/docs/`); the bucket's top level is
/// titled with the bucket's name (a whole-bucket link's page and tab were titled "/").
fn folder_title<'a>(bucket: &'a str, folder: &'a str) -> &'a str {
    folder
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or(bucket)
}

/// Breadcrumbs from the scope down to `folder`: (label, relative link or `None` for the
/// folder shown). Nothing above the scope: the link gives no view of it.
fn breadcrumbs(bucket: &str, scope: &str, folder: &str) -> Vec<(String, Option<String>)> {
    let inside = folder.strip_prefix(scope).unwrap_or("");
    let segs: Vec<&str> = inside.split('/').filter(|s| !s.is_empty()).collect();
    let mut out = Vec::with_capacity(segs.len() + 1);
    let up = |n: usize| -> Option<String> { (n > 0).then(|| "../".repeat(n)) };
    out.push((folder_title(bucket, scope).to_owned(), up(segs.len())));
    for (i, s) in segs.iter().enumerate() {
        out.push(((*s).to_owned(), up(segs.len() - i - 1)));
    }
    out
}

const STYLE: &str = "body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:60em;padding:0 1em;color:#222}\
h1{font-size:1.3em;word-break:break-all}nav{margin-bottom:1em;word-break:break-all}\
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.3em .6em;border-bottom:1px solid #ddd;vertical-align:top}\
td.n{word-break:break-all;white-space:pre-wrap}td.s,th.s{text-align:right;white-space:nowrap}td.d{white-space:nowrap;color:#555}\
.empty{color:#777}.pager{margin-top:1em}\
#drop{border:2px dashed #888;border-radius:8px;padding:2em;text-align:center;margin:1em 0}#drop.over{background:#eef}\
#files li{margin:.4em 0;word-break:break-all}progress{width:12em;vertical-align:middle}.err{color:#b00}.ok{color:#070}";

/// The HTML page of one folder page.
pub fn render_html(info: &PageInfo<'_>, page: &FolderPage) -> String {
    let mut h = String::with_capacity(4096 + 200 * (page.files.len() + page.folders.len()));
    let title = escape_html(folder_title(info.bucket, info.folder));
    let nonce = escape_html(info.nonce);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<meta name=\"referrer\" content=\"no-referrer\">\
<title>{title}</title><style nonce=\"{nonce}\">{STYLE}</style></head><body>\n<nav aria-label=\"folders\">"
    );
    let crumbs = breadcrumbs(info.bucket, info.scope, info.folder);
    for (i, (label, href)) in crumbs.iter().enumerate() {
        if i > 0 {
            h.push_str(" / ");
        }
        match href {
            Some(href) => {
                let _ = write!(
                    h,
                    "<a href=\"{}\">{}</a>",
                    escape_html(href),
                    escape_html(label)
                );
            }
            None => {
                let _ = write!(h, "<strong>{}</strong>", escape_html(label));
            }
        }
    }
    h.push_str("</nav>\n");
    if info.read {
        let _ = writeln!(h, "<h1>{title}</h1>");
    } else {
        let _ = writeln!(h, "<h1>Upload to {title}</h1>");
    }
    if let Some(up) = &info.upload {
        h.push_str(&super::upload_page::render_panel(up, info.nonce));
    }
    if info.read {
        render_table(&mut h, info, page);
    }
    h.push_str("</body></html>\n");
    h
}

fn render_table(h: &mut String, info: &PageInfo<'_>, page: &FolderPage) {
    if page.folders.is_empty() && page.files.is_empty() {
        h.push_str("<p class=\"empty\">This folder is empty.</p>\n");
    } else {
        h.push_str(
            "<table><thead><tr><th>Name</th><th class=\"s\">Size</th><th>Modified</th></tr></thead><tbody>\n",
        );
        for f in &page.folders {
            let name = escape_html(&display_name(info.folder, f));
            match entry_href(info.folder, f) {
                Some(href) => {
                    let _ = writeln!(
                        h,
                        "<tr class=\"folder\"><td class=\"n\"><a href=\"{}\">{name}</a></td><td class=\"s\">—</td><td class=\"d\"></td></tr>",
                        escape_html(&href)
                    );
                }
                None => {
                    let _ = writeln!(
                        h,
                        "<tr class=\"folder\"><td class=\"n\">{name} <small>(cannot be opened through a link)</small></td><td class=\"s\">—</td><td class=\"d\"></td></tr>"
                    );
                }
            }
        }
        for o in &page.files {
            let name = escape_html(&display_name(info.folder, &o.key));
            let cell = match entry_href(info.folder, &o.key) {
                Some(href) => format!("<a href=\"{}\">{name}</a>", escape_html(&href)),
                None => format!("{name} <small>(cannot be opened through a link)</small>"),
            };
            let _ = writeln!(
                h,
                "<tr class=\"file\"><td class=\"n\">{cell}</td><td class=\"s\" title=\"{} bytes\">{}</td><td class=\"d\">{}</td></tr>",
                o.size,
                escape_html(&size(o.size)),
                escape_html(&date(o.modified)),
            );
        }
        h.push_str("</tbody></table>\n");
    }
    if info.page.is_some() || page.next.is_some() {
        h.push_str("<p class=\"pager\">");
        if info.page.is_some() {
            h.push_str("<a href=\"./\">First page</a>");
        }
        if let Some(next) = &page.next {
            if info.page.is_some() {
                h.push_str(" · ");
            }
            let _ = write!(
                h,
                "<a rel=\"next\" href=\"{}\">Next page</a>",
                escape_html(&next_href(next))
            );
        }
        h.push_str("</p>\n");
    }
}

/// The same listing as JSON: names relative to the folder, `href` relative to the request
/// URL (`null` for names the relay cannot serve), `next` the `?page=` link of the next page.
pub fn render_json(info: &PageInfo<'_>, page: &FolderPage) -> String {
    let folders: Vec<_> = page
        .folders
        .iter()
        .map(|f| {
            serde_json::json!({
                "name": display_name(info.folder, f),
                "key": f,
                "href": entry_href(info.folder, f),
            })
        })
        .collect();
    let files: Vec<_> = page
        .files
        .iter()
        .map(|o| {
            serde_json::json!({
                "name": display_name(info.folder, &o.key),
                "key": o.key,
                "size": o.size,
                "modified": o.modified.map(crate::links::format_rfc3339),
                "href": entry_href(info.folder, &o.key),
            })
        })
        .collect();
    let v = serde_json::json!({
        "folder": info.folder,
        "folders": folders,
        "files": files,
        "next": page.next.as_deref().map(next_href),
    });
    let mut s = v.to_string();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, size: u64) -> ObjectEntry {
        ObjectEntry {
            key: key.into(),
            size,
            modified: Some(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000)),
            etag: None,
        }
    }

    fn info<'a>(scope: &'a str, folder: &'a str, page: Option<&'a str>) -> PageInfo<'a> {
        PageInfo {
            bucket: "bkt",
            scope,
            folder,
            page,
            nonce: "N0nce",
            read: true,
            upload: None,
        }
    }

    #[test]
    fn names_are_escaped_and_links_encoded() {
        let nasty = [
            "docs/<img src=x onerror=alert(1)>.txt",
            "docs/a\"b'c&d.txt",
            "docs/with space #1?.txt",
            "docs/100% + more.txt",
            "docs/ünï 文件.txt",
            "docs/a:b.txt",
        ];
        let mut page = FolderPage {
            folders: vec!["docs/<b>sub&\"/".into(), "docs/.s3share/".into()],
            files: nasty.iter().map(|k| entry(k, 1536)).collect(),
            next: None,
        };
        page.files.push(entry("docs/new\nline.txt", 1));
        page.files.push(entry("docs/..", 1));
        let html = render_html(&info("docs/", "docs/", None), &page);
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains(">&lt;img src=x onerror=alert(1)&gt;.txt</a>"));
        assert!(html.contains("a&quot;b&#39;c&amp;d.txt"));
        assert!(html.contains("href=\"./%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E.txt\""));
        assert!(html.contains("href=\"./a%22b%27c%26d.txt\""));
        assert!(html.contains("href=\"./with%20space%20%231%3F.txt\""));
        assert!(html.contains("href=\"./100%25%20%2B%20more.txt\""));
        assert!(html.contains("href=\"./%C3%BCn%C3%AF%20%E6%96%87%E4%BB%B6.txt\""));
        assert!(html.contains("href=\"./a%3Ab.txt\""));
        assert!(html.contains(">ünï 文件.txt</a>"));
        assert!(html.contains("href=\"./%3Cb%3Esub%26%22/\">&lt;b&gt;sub&amp;&quot;/</a>"));
        // Only the bucket root's `.s3share/` is reserved; a sub-folder of that name is shown.
        assert!(html.contains("href=\"./.s3share/\""));
        // Unservable names: listed, escaped, not linked.
        assert!(html.contains("new&#10;line.txt <small>"));
        assert!(!html.contains("new%0Aline"));
        assert!(!html.contains("href=\"./..\""));
        assert!(html.contains("title=\"1536 bytes\">1.50 KiB<"));
        assert!(html.contains("2023-11-14 22:13 UTC"));
        // Every relative link, resolved by the relay's own parser, names the key it shows.
        for k in nasty {
            let href = entry_href("docs/", k).unwrap();
            let url = format!("/T/docs/{}", href.strip_prefix("./").unwrap());
            assert_eq!(path::parse(&url).unwrap().key, k);
        }
        let json: serde_json::Value =
            serde_json::from_str(&render_json(&info("docs/", "docs/", None), &page)).unwrap();
        assert_eq!(json["files"][0]["name"], "<img src=x onerror=alert(1)>.txt");
        assert_eq!(json["files"][6]["href"], serde_json::Value::Null);
        assert_eq!(json["files"][1]["size"], 1536);
        assert_eq!(json["next"], serde_json::Value::Null);
    }

    #[test]
    fn reserved_prefix_is_never_listed() {
        let mut page = FolderPage {
            folders: vec![".s3share/".into(), "a/".into(), "elsewhere/".into()],
            files: vec![
                entry(".s3share/ledger/x", 1),
                entry("a.txt", 1),
                entry("", 0),
            ],
            next: None,
        };
        page.hide_reserved("");
        assert_eq!(page.folders, ["a/", "elsewhere/"]);
        assert_eq!(page.files.len(), 1);
        let mut page = FolderPage {
            folders: vec!["docs/sub/".into(), "other/".into()],
            files: vec![entry("docs/", 0), entry("docs/f", 1), entry("x", 1)],
            next: None,
        };
        page.hide_reserved("docs/");
        assert_eq!(page.folders, ["docs/sub/"]);
        assert_eq!(page.files.len(), 1);
        assert!(entry_href("", ".s3share/ledger").is_none());
    }

    #[test]
    fn pagination_and_breadcrumbs() {
        let page = FolderPage {
            folders: vec![],
            files: vec![entry("s/a/b/f", 1)],
            next: Some("tok/+=&\"<".into()),
        };
        let html = render_html(&info("s/", "s/a/b/", Some("prev")), &page);
        assert!(html.contains("<a href=\"./\">First page</a>"));
        assert!(
            html.contains("href=\"?page=tok%2F%2B%3D%26%22%3C\""),
            "{html}"
        );
        assert_eq!(
            page_token(Some("page=tok%2F%2B%3D%26%22%3C")).unwrap(),
            Some("tok/+=&\"<".into())
        );
        assert_eq!(page_token(Some("x=1")).unwrap(), None);
        assert_eq!(page_token(None).unwrap(), None);
        assert!(page_token(Some("page=%0a")).is_err());
        assert!(page_token(Some(&format!("page={}", "a".repeat(2000)))).is_err());
        // s / a / b: the scope's name links two levels up, nothing above the scope.
        assert!(
            html.contains("<a href=\"../../\">s</a> / <a href=\"../\">a</a> / <strong>b</strong>")
        );
        assert!(!html.contains("../../../"));
        let first = render_html(&info("s/", "s/", None), &FolderPage::default());
        assert!(first.contains("<strong>s</strong>"));
        assert!(first.contains("This folder is empty."));
        assert!(!first.contains("First page"));
        let json: serde_json::Value =
            serde_json::from_str(&render_json(&info("s/", "s/a/b/", None), &page)).unwrap();
        assert_eq!(json["next"], "?page=tok%2F%2B%3D%26%22%3C");
        assert_eq!(json["folder"], "s/a/b/");
    }

    /// A whole-bucket link's page is titled with the bucket's name, not "/", and its
    /// breadcrumbs start there.
    #[test]
    fn the_bucket_top_level_is_titled_with_the_bucket_name() {
        let top = render_html(&info("", "", None), &FolderPage::default());
        assert!(top.contains("<title>bkt</title>"), "{top}");
        assert!(top.contains("<h1>bkt</h1>"), "{top}");
        assert!(top.contains("<strong>bkt</strong>"), "{top}");
        let inside = render_html(&info("", "a/", None), &FolderPage::default());
        assert!(inside.contains("<title>a</title>"), "{inside}");
        assert!(
            inside.contains("<a href=\"../\">bkt</a> / <strong>a</strong>"),
            "{inside}"
        );
    }

    #[test]
    fn accept_negotiation() {
        assert!(wants_json(Some("application/json")));
        assert!(wants_json(Some("application/json, text/plain;q=0.5")));
        assert!(!wants_json(Some(
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        )));
        assert!(!wants_json(Some("text/html, application/json;q=0.9")));
        assert!(wants_json(Some("text/html;q=0.5, application/json")));
        assert!(!wants_json(Some("application/json;q=0")));
        assert!(!wants_json(Some("*/*")));
        assert!(!wants_json(None));
        assert!(wants_html(Some("text/html,*/*")));
        assert!(!wants_html(Some("*/*")));
    }
}
