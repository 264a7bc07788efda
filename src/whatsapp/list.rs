//! Interactive list messages: the openings offered to a patient who asked to reschedule, one
//! row each (`RS:<offer id>`) and a "none of these" row, inside the patient's 24-hour window.

use serde::{Deserialize, Serialize};

use crate::phone::E164;

/// Most rows a list may hold (WhatsApp's limit is 10; we offer at most 3 and "none").
pub const MAX_ROWS: usize = 10;

/// A list message as an outbox row stores it (`params.list`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListMessage {
    /// The text above the list (up to 1024 characters).
    pub body: String,
    /// The label of the button that opens the list (up to 20 characters).
    pub button: String,
    /// The rows, in order.
    pub rows: Vec<ListRow>,
}

/// One row of a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListRow {
    /// Comes back as `list_reply.id` (up to 200 characters).
    pub id: String,
    /// What the patient sees (up to 24 characters).
    pub title: String,
    /// A second line (up to 72 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `interactive` object of a list send.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InteractivePayload {
    /// Always `list`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// `{"text": …}`.
    pub body: serde_json::Value,
    /// `{"button": …, "sections": [{"title": …, "rows": […]}]}`.
    pub action: serde_json::Value,
}

impl ListMessage {
    /// The list of an outbox row's params (`{"list": {...}}`), if it has one.
    pub fn from_params(params: &str) -> Option<Self> {
        let v: serde_json::Value = serde_json::from_str(params).ok()?;
        serde_json::from_value(v.get("list")?.clone()).ok()
    }

    /// Cuts every field to WhatsApp's limits (a longer title is refused by the API).
    #[must_use]
    pub fn fitted(mut self) -> Self {
        let cut = |s: &mut String, n: usize| {
            if s.chars().count() > n {
                *s = s.chars().take(n).collect();
            }
        };
        cut(&mut self.body, 1024);
        cut(&mut self.button, 20);
        self.rows.truncate(MAX_ROWS);
        for r in &mut self.rows {
            cut(&mut r.title, 24);
            if let Some(d) = &mut r.description {
                cut(d, 72);
            }
        }
        self
    }
}

impl super::SendRequest {
    /// An interactive list message (free-form: within 24 hours of the patient's message).
    pub fn list(to: &E164, list: &ListMessage, callback: String) -> Self {
        let list = list.clone().fitted();
        let rows: Vec<serde_json::Value> = list
            .rows
            .iter()
            .map(|r| {
                let mut row = serde_json::json!({ "id": r.id, "title": r.title });
                if let Some(d) = &r.description {
                    row["description"] = serde_json::json!(d);
                }
                row
            })
            .collect();
        Self {
            messaging_product: "whatsapp",
            recipient_type: "individual",
            to: to.as_str().to_string(),
            kind: "interactive",
            template: None,
            text: None,
            document: None,
            interactive: Some(InteractivePayload {
                kind: "list",
                body: serde_json::json!({ "text": list.body }),
                action: serde_json::json!({
                    "button": list.button,
                    "sections": [{ "title": list.button, "rows": rows }],
                }),
            }),
            biz_opaque_callback_data: callback,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_send_carries_its_rows_within_the_limits() {
        let list = ListMessage {
            body: "These times are free".into(),
            button: "Choose a time, please now".into(),
            rows: vec![
                ListRow {
                    id: "RS:7".into(),
                    title: "Tuesday 1 December 10:30 am".into(),
                    description: Some("with Dr Rao".into()),
                },
                ListRow {
                    id: "RS:none:7".into(),
                    title: "None of these".into(),
                    description: None,
                },
            ],
        };
        let params = serde_json::json!({ "list": list }).to_string();
        let read = ListMessage::from_params(&params).expect("list");
        let to = E164::from_wa_id("919820012345").expect("phone");
        let v = serde_json::to_value(super::super::SendRequest::list(&to, &read, "9".into()))
            .expect("json");
        assert_eq!(v["type"], "interactive");
        assert_eq!(v["interactive"]["type"], "list");
        let rows = &v["interactive"]["action"]["sections"][0]["rows"];
        assert_eq!(rows[0]["id"], "RS:7");
        assert_eq!(
            rows[0]["title"].as_str().map(|t| t.chars().count()),
            Some(24)
        );
        assert_eq!(rows[1]["id"], "RS:none:7");
        assert_eq!(
            v["interactive"]["action"]["button"].as_str().map(str::len),
            Some(20)
        );
        assert!(v.get("text").is_none());
    }
}
