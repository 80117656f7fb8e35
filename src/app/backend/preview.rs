//! Previews of the selected file: an image (downscaled), the start of a text, or nothing.

use std::sync::Arc;

use super::PreviewContent;
use crate::ErrorReport;
use crate::s3::S3Client;

const PREVIEW_IMAGE_MAX: u64 = 20 * 1024 * 1024;
const PREVIEW_TEXT_MAX: u64 = 64 * 1024;

pub(super) async fn load_preview(
    client: &S3Client,
    bucket: &str,
    key: &str,
    size: u64,
) -> Result<PreviewContent, ErrorReport> {
    let ext = key
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    let is_image = matches!(
        ext.as_str(),
        "png" | "jpg" | "jpeg" | "gif" | "webp" | "bmp"
    );
    if is_image && size <= PREVIEW_IMAGE_MAX {
        // Loaded through a presigned GET, like any user of the link would.
        let bytes = client
            .get_via_link(bucket, key, PREVIEW_IMAGE_MAX)
            .await
            .map_err(|e| ErrorReport::from(&e))?;
        let image = tokio::task::spawn_blocking(move || decode_image(&bytes))
            .await
            .map_err(|e| ErrorReport::words(e.to_string()))?;
        return Ok(match image {
            Ok(image) => PreviewContent::Image(Arc::new(image)),
            Err(why) => PreviewContent::Undecodable(why),
        });
    }
    if size == 0 || is_image {
        return Ok(PreviewContent::Metadata);
    }
    let bytes = client
        .read_start(bucket, key, PREVIEW_TEXT_MAX)
        .await
        .map_err(|e| ErrorReport::from(&e))?;
    if bytes.contains(&0) {
        return Ok(PreviewContent::Metadata);
    }
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let replaced = text
        .chars()
        .filter(|c| *c == char::REPLACEMENT_CHARACTER)
        .count();
    if replaced > text.len() / 100 + 2 {
        return Ok(PreviewContent::Metadata);
    }
    Ok(PreviewContent::Text {
        text,
        truncated: size > PREVIEW_TEXT_MAX,
    })
}

fn decode_image(bytes: &[u8]) -> Result<egui::ColorImage, String> {
    let image =
        image::load_from_memory(bytes).map_err(|e| format!("cannot decode the image: {e}"))?;
    let image = if image.width() > 1024 || image.height() > 1024 {
        image.thumbnail(1024, 1024)
    } else {
        image
    };
    let rgba = image.to_rgba8();
    Ok(egui::ColorImage::from_rgba_unmultiplied(
        [rgba.width() as usize, rgba.height() as usize],
        rgba.as_raw(),
    ))
}
