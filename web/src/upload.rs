//! Forms that may carry files: read as url-encoded fields, or as
//! multipart with the files apart. A file travels with the step it is
//! attached to; between "check your request" and sending, the page holds
//! it in hidden fields (`carried-name`, `carried-type`, `carried-data`,
//! base64), so nothing is kept on the server before the official sends.

use axum::Form;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::header::CONTENT_TYPE;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use imi_protocol::{
    Attachment, AttachmentError, MAX_ATTACHMENTS_PER_STEP, MAX_STEP_ATTACHMENT_BYTES,
};
use tracing::info;

use crate::error::WebError;
use crate::i18n::Tr;
use crate::views::FieldError;

/// The request body a form with files may be, at most: the files in
/// base64 (when carried through a check page) and the other fields.
pub(crate) const MAX_FORM_BYTES: usize = MAX_STEP_ATTACHMENT_BYTES / 3 * 4 + 1024 * 1024;

/// A file as the browser sent it.
pub(crate) struct Upload {
    /// The form field it came in.
    pub(crate) field: String,
    /// The file's name.
    pub(crate) name: String,
    /// Its media type as the browser gave it.
    pub(crate) media_type: String,
    /// The file.
    pub(crate) bytes: Vec<u8>,
}

/// A submitted form: its fields, and its files.
pub(crate) struct Submitted {
    /// The fields, in order.
    pub(crate) pairs: Vec<(String, String)>,
    /// The files chosen.
    pub(crate) files: Vec<Upload>,
}

impl<S: Send + Sync> FromRequest<S> for Submitted {
    type Rejection = WebError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let multipart = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("multipart/form-data"));
        if !multipart {
            let Form(pairs) = Form::<Vec<(String, String)>>::from_request(req, state)
                .await
                .map_err(|e| WebError::BadRequest(e.body_text()))?;
            return Ok(Submitted {
                pairs,
                files: vec![],
            });
        }
        let unreadable = |e: axum::extract::multipart::MultipartError| {
            info!(error = %e, "a form with files could not be read");
            WebError::BadRequest(format!("the form could not be read: {}", e.body_text()))
        };
        let mut form = Multipart::from_request(req, state)
            .await
            .map_err(|e| WebError::BadRequest(e.body_text()))?;
        let mut submitted = Submitted {
            pairs: vec![],
            files: vec![],
        };
        while let Some(field) = form.next_field().await.map_err(unreadable)? {
            let name = field.name().unwrap_or_default().to_owned();
            match field.file_name().map(str::to_owned) {
                Some(file_name) => {
                    let media_type = field
                        .content_type()
                        .filter(|t| !t.is_empty())
                        .unwrap_or("application/octet-stream")
                        .to_owned();
                    let bytes = field.bytes().await.map_err(unreadable)?.to_vec();
                    // A file input left empty sends a part with no name.
                    if file_name.is_empty() && bytes.is_empty() {
                        continue;
                    }
                    submitted.files.push(Upload {
                        field: name,
                        name: file_name,
                        media_type,
                        bytes,
                    });
                }
                None => {
                    let text = field.text().await.map_err(unreadable)?;
                    submitted.pairs.push((name, text));
                }
            }
        }
        Ok(submitted)
    }
}

/// A file carried in a page's hidden fields, as the template writes them.
pub(crate) struct Carried {
    pub(crate) name: String,
    pub(crate) media_type: String,
    pub(crate) data: String,
    /// The size as shown (`"1.2 MB"`).
    pub(crate) size: String,
}

/// The files a form gives for `field` (chosen now or carried from the
/// check page), checked against the node's limit; or the error to show
/// at `field`.
pub(crate) fn attachments(
    submitted: &Submitted,
    field: &str,
    limit: usize,
    t: &Tr,
) -> Result<Vec<Attachment>, FieldError> {
    let value = |n: &str| -> Vec<&str> {
        submitted
            .pairs
            .iter()
            .filter(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    let (names, types, data) = (
        value("carried-name"),
        value("carried-type"),
        value("carried-data"),
    );
    let mut files = Vec::new();
    for ((name, media_type), data) in names.iter().zip(&types).zip(&data) {
        let bytes = STANDARD.decode(data.trim()).map_err(|_| {
            info!(file = name, "a carried file was not base64");
            FieldError::named(field.to_owned(), t.with("attachment-bad", "name", name))
        })?;
        files.push(Attachment::new(*name, *media_type, bytes));
    }
    files.extend(
        submitted
            .files
            .iter()
            .filter(|u| u.field == field)
            .map(|u| Attachment::new(u.name.clone(), u.media_type.clone(), u.bytes.clone())),
    );
    let content = imi_protocol::Content {
        attachments: files,
        ..imi_protocol::Content::default()
    };
    match content.check_attachments(limit) {
        Ok(()) => Ok(content.attachments),
        Err(err) => {
            info!(error = %err, "attached files refused");
            let message = match &err {
                AttachmentError::TooMany { .. } => {
                    t.count("attachment-too-many", "count", MAX_ATTACHMENTS_PER_STEP)
                }
                AttachmentError::TooLarge { size, limit } => t.with2(
                    "attachment-too-large",
                    "size",
                    &human_size(*size),
                    "limit",
                    &human_size(*limit),
                ),
                AttachmentError::DigestMismatch { name }
                | AttachmentError::BadName { name }
                | AttachmentError::BadMediaType { name, .. }
                | AttachmentError::Empty { name } => t.with("attachment-bad", "name", name),
            };
            Err(FieldError::named(field.to_owned(), message))
        }
    }
}

/// Files to carry in hidden fields.
pub(crate) fn carried(files: &[Attachment]) -> Vec<Carried> {
    files
        .iter()
        .map(|a| Carried {
            name: a.name.clone(),
            media_type: a.media_type.clone(),
            data: STANDARD.encode(&a.bytes),
            size: human_size(a.bytes.len()),
        })
        .collect()
}

/// A size as people read it: `"980 B"`, `"340 kB"`, `"1.2 MB"`.
pub(crate) fn human_size(bytes: usize) -> String {
    const KB: usize = 1000;
    const MB: usize = 1000 * KB;
    if bytes < KB {
        format!("{bytes} B")
    } else if bytes < MB {
        format!("{} kB", bytes.div_ceil(KB))
    } else {
        format!("{}.{} MB", bytes / MB, (bytes % MB) / (MB / 10))
    }
}

#[cfg(test)]
mod tests {
    use super::human_size;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_size(980), "980 B");
        assert_eq!(human_size(340_001), "341 kB");
        assert_eq!(human_size(2_097_152), "2.0 MB");
        assert_eq!(human_size(1_250_000), "1.2 MB");
    }
}
