//! Documents the clinic sends: a file uploaded to the Cloud API's media endpoint
//! (`POST /{version}/{phone-number-id}/media`, multipart with `messaging_product=whatsapp`,
//! `type` and `file`, answered `{"id"}`), and the document message that names the media id.
//!
//! An upload only stores a file at Meta, so an upload whose answer was lost is harmless: it
//! is made again, never counted as a message that may have gone.

use reqwest::multipart;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use super::{Client, SendError, SendRequest, api_error, transport_error};
use crate::phone::E164;

/// `document` object of a document message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DocumentPayload {
    /// The uploaded file's media id.
    pub id: String,
    /// The name the patient sees.
    pub filename: String,
    /// Text shown under the document.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
}

impl SendRequest {
    /// A document message (free-form: within 24 hours of the patient's last message).
    pub fn document(
        to: &E164,
        media_id: String,
        filename: String,
        caption: Option<String>,
        callback: String,
    ) -> Self {
        Self {
            messaging_product: "whatsapp",
            recipient_type: "individual",
            to: to.as_str().to_string(),
            kind: "document",
            template: None,
            text: None,
            document: Some(DocumentPayload {
                id: media_id,
                filename,
                caption: caption.filter(|c| !c.trim().is_empty()),
            }),
            biz_opaque_callback_data: callback,
        }
    }
}

#[derive(Deserialize)]
struct UploadResponse {
    id: String,
}

impl Client {
    /// Uploads one file; its media id. Any failure before an id came back is safe to retry
    /// (no message went out), so a lost answer is [`SendError::NotSent`], not ambiguous.
    pub async fn upload_media(
        &self,
        bytes: Vec<u8>,
        mime_type: &str,
        filename: &str,
    ) -> Result<String, SendError> {
        let url = format!(
            "{}/{}/{}/media",
            self.base, self.version, self.phone_number_id
        );
        let part = multipart::Part::bytes(bytes)
            .file_name(filename.to_string())
            .mime_str(mime_type)
            .map_err(|e| SendError::NotSent(format!("bad media type {mime_type:?}: {e}")))?;
        let form = multipart::Form::new()
            .text("messaging_product", "whatsapp")
            .text("type", mime_type.to_string())
            .part("file", part);
        let not_sent = |e: SendError| match e {
            SendError::Ambiguous(m) => SendError::NotSent(format!("upload: {m}")),
            other => other,
        };
        let resp = self
            .http
            .post(&url)
            .bearer_auth(self.token.expose_secret())
            .multipart(form)
            .send()
            .await
            .map_err(|e| not_sent(transport_error(e)))?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| SendError::NotSent(format!("upload: the response was cut off: {e}")))?;
        if status.is_success() {
            return serde_json::from_slice::<UploadResponse>(&body)
                .map(|r| r.id)
                .map_err(|e| {
                    SendError::NotSent(format!("upload: HTTP {status} without a media id: {e}"))
                });
        }
        Err(api_error(status.as_u16(), &body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_message_names_the_media_id_and_leaves_out_an_empty_caption() {
        let to = E164::from_stored("+919820012345".into());
        let req = SendRequest::document(
            &to,
            "1234".into(),
            "Consent form.pdf".into(),
            Some("  ".into()),
            "7".into(),
        );
        let v = serde_json::to_value(&req).expect("json");
        assert_eq!(v["type"], "document");
        assert_eq!(v["document"]["id"], "1234");
        assert_eq!(v["document"]["filename"], "Consent form.pdf");
        assert!(v["document"].get("caption").is_none());
        assert!(v.get("text").is_none() && v.get("template").is_none());
        assert_eq!(v["biz_opaque_callback_data"], "7");
    }
}
