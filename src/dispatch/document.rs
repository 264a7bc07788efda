//! Sending a document from the clinic's library (`staff_document` rows): the file is uploaded
//! to the Cloud API's media endpoint, then the document message names the media id, under
//! the same rate limit, recipient gate and request note as every other send.
//!
//! The upload comes first and outside the request note: until the message itself goes out,
//! nothing can have reached the patient, so a failed upload is simply tried again.

use super::{Outcome, SendJob, failed, outcome};
use crate::config::WhatsApp;
use crate::store::DueRow;
use crate::whatsapp::SendRequest;

impl SendJob {
    /// Uploads the row's document and sends it; the outcome, and the params to store.
    pub(super) async fn attempt_document(
        &self,
        row: &DueRow,
        cfg: &WhatsApp,
    ) -> (Outcome, Option<String>, Option<String>) {
        let params: serde_json::Value = row
            .params
            .as_deref()
            .and_then(|p| serde_json::from_str(p).ok())
            .unwrap_or_default();
        let key = params["document"].as_str().unwrap_or_default();
        let Some(doc) = self.config.documents.get(key) else {
            return (
                failed(format!(
                    "the document {key:?} is no longer in the clinic's library ([documents] in the config)"
                )),
                None,
                row.params.clone(),
            );
        };
        let bytes = match tokio::fs::read(&doc.path).await {
            Ok(b) => b,
            Err(e) => {
                return (
                    failed(format!(
                        "the document file {} cannot be read: {e}",
                        doc.path.display()
                    )),
                    None,
                    row.params.clone(),
                );
            }
        };
        let media_id = match self
            .client
            .upload_media(bytes, doc.mime_type, &doc.filename)
            .await
        {
            Ok(id) => id,
            Err(e) => {
                let now = self.clock.now();
                tracing::warn!(outbox = row.id, error = %e, "the document could not be uploaded");
                return (
                    outcome(&e, row, cfg, now, rand::random::<f64>()),
                    None,
                    row.params.clone(),
                );
            }
        };
        let caption = params["caption"].as_str().map(str::to_string);
        let request = SendRequest::document(
            &row.phone,
            media_id,
            doc.filename.clone(),
            caption,
            row.id.to_string(),
        );
        (
            self.send_request(row, &request, cfg).await,
            None,
            row.params.clone(),
        )
    }
}
