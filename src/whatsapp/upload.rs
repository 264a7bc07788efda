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
            interactive: None,
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

    #[tokio::test(flavor = "multi_thread")]
    async fn an_upload_gives_the_media_id_a_document_message_names_and_an_unknown_id_is_refused() {
        use crate::sim::{Sim, SimConfig};
        use secrecy::SecretString;
        use sha2::Digest as _;
        const TOKEN: &str = "upload-test-token";
        let sim = Sim::start(SimConfig {
            access_token: TOKEN.into(),
            webhook_url: None,
            ..SimConfig::default()
        })
        .await
        .expect("sim");
        let mut config = crate::config::Config::example().expect("example config");
        let mut wa = config.whatsapp.take().expect("[whatsapp]");
        wa.api_base = sim.base_url();
        wa.phone_number_id = sim.config().phone_number_id.clone();
        let client = Client::new(&wa, SecretString::from(TOKEN), None).expect("client");
        let pdf = b"%PDF-1.4 a consent form".to_vec();
        let id = client
            .upload_media(pdf.clone(), "application/pdf", "Consent form.pdf")
            .await
            .expect("uploaded");
        let uploads = sim.uploads();
        assert_eq!(uploads.len(), 1);
        assert_eq!(uploads[0].id, id);
        assert_eq!(uploads[0].filename, "Consent form.pdf");
        assert_eq!(uploads[0].mime_type, "application/pdf");
        assert_eq!(
            uploads[0].sha256_hex,
            format!("{:x}", sha2::Sha256::digest(&pdf))
        );

        let to = E164::from_stored("+919820012345".into());
        let sent = client
            .send(&SendRequest::document(
                &to,
                id,
                "Consent form.pdf".into(),
                None,
                "1".into(),
            ))
            .await;
        assert!(sent.is_ok(), "{sent:?}");
        let err = client
            .send(&SendRequest::document(
                &to,
                "999".into(),
                "x.pdf".into(),
                None,
                "2".into(),
            ))
            .await
            .expect_err("unknown media id");
        assert!(
            matches!(&err, SendError::Api { http_status: 400, code: 100, details: Some(d), .. }
                if d.contains("document['id']")),
            "{err:?}"
        );
        // A type WhatsApp does not take as a document: Graph's parameter error.
        let err = client
            .upload_media(b"MZ".to_vec(), "application/x-msdownload", "tool.exe")
            .await
            .expect_err("refused");
        assert_eq!(err.code(), Some(100), "{err:?}");
        // The wrong token: 401, code 190, as for every call.
        let other = Client::new(&wa, SecretString::from("wrong"), None).expect("client");
        let err = other
            .upload_media(pdf, "application/pdf", "a.pdf")
            .await
            .expect_err("unauthorised");
        assert_eq!(err.code(), Some(190), "{err:?}");
    }
}
