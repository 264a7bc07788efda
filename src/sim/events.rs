//! The account-level webhooks the simulator posts on a test's request, in Meta's shapes:
//! a template's quality change, a re-categorisation (announced, or done), and `account_update`
//! (a restriction, its lifting, a disabled account, or any other event a test writes).

use serde_json::{Value, json};

use super::{Shared, Sim, SimError, webhook};
use crate::time::Clock;

impl Shared {
    /// The catalogue index of a template, or the error a test should see.
    fn template_index(&self, name: &str, language: &str) -> Result<(usize, String), SimError> {
        self.state()
            .templates
            .iter()
            .enumerate()
            .find(|(_, t)| t.name == name && t.language == language)
            .map(|(i, t)| (i, t.category.clone()))
            .ok_or_else(|| SimError::UnknownTemplate {
                name: name.into(),
                language: language.into(),
            })
    }

    /// Posts one change of `field`, when a webhook URL is set.
    async fn post_change(&self, field: &str, value: Value) -> Result<(), SimError> {
        if self.config.webhook_url.is_none() {
            return Ok(());
        }
        let payload = json!({
            "object": "whatsapp_business_account",
            "entry": [{
                "id": self.config.waba_id,
                "time": Clock::System.now().timestamp(),
                "changes": [{ "field": field, "value": value }]
            }]
        });
        webhook::deliver(self, &payload).await
    }
}

impl Sim {
    /// Posts a `message_template_quality_update` (`GREEN`, `YELLOW`, `RED`, `UNKNOWN`).
    pub async fn set_template_quality(
        &self,
        name: &str,
        language: &str,
        previous: &str,
        new: &str,
    ) -> Result<(), SimError> {
        let (index, _) = self.shared.template_index(name, language)?;
        let value = json!({
            "previous_quality_score": previous,
            "new_quality_score": new,
            "message_template_id": template_id(index),
            "message_template_name": name,
            "message_template_language": language,
        });
        self.shared
            .post_change("message_template_quality_update", value)
            .await
    }

    /// Re-categorises a template (later sends are billed and reported in the new category)
    /// and posts the *completed* `template_category_update`.
    pub async fn set_template_category(
        &self,
        name: &str,
        language: &str,
        new_category: &str,
    ) -> Result<(), SimError> {
        let (index, previous) = self.shared.template_index(name, language)?;
        self.shared.state().templates[index].category = new_category.to_string();
        let value = json!({
            "message_template_id": template_id(index),
            "message_template_name": name,
            "message_template_language": language,
            "previous_category": previous,
            "new_category": new_category,
        });
        self.shared
            .post_change("template_category_update", value)
            .await
    }

    /// Posts the *impending* `template_category_update`: Meta will move the template to
    /// `correct_category` at `at` (Unix seconds); nothing changes yet.
    pub async fn announce_template_category(
        &self,
        name: &str,
        language: &str,
        correct_category: &str,
        at: i64,
    ) -> Result<(), SimError> {
        let (index, current) = self.shared.template_index(name, language)?;
        let value = json!({
            "message_template_id": template_id(index),
            "message_template_name": name,
            "message_template_language": language,
            "correct_category": correct_category,
            "new_category": current,
            "category_update_timestamp": at,
        });
        self.shared
            .post_change("template_category_update", value)
            .await
    }

    /// Posts an `account_update` with `event` and the event's own fields (`restriction_info`,
    /// `ban_info`, `violation_info`, `volume_tier_info`, ...).
    pub async fn account_update(&self, event: &str, fields: Value) -> Result<(), SimError> {
        let mut value = json!({
            "phone_number": self.shared.config.display_phone_number,
            "event": event,
        });
        if let (Some(v), Value::Object(extra)) = (value.as_object_mut(), fields) {
            v.extend(extra);
        }
        self.shared.post_change("account_update", value).await
    }

    /// Meta restricts business-initiated messaging, until `expiration` (Unix seconds) if given.
    pub async fn restrict_account(&self, expiration: Option<i64>) -> Result<(), SimError> {
        let mut r = json!({ "restriction_type": "RESTRICTED_BIZ_INITIATED_MESSAGING" });
        if let Some(e) = expiration {
            r["expiration"] = json!(e);
        }
        self.account_update("ACCOUNT_RESTRICTION", json!({ "restriction_info": [r] }))
            .await
    }

    /// Meta lifts the account's restrictions (an `ACCOUNT_RESTRICTION` with none left).
    pub async fn lift_account_restriction(&self) -> Result<(), SimError> {
        self.account_update("ACCOUNT_RESTRICTION", json!({ "restriction_info": [] }))
            .await
    }
}

fn template_id(index: usize) -> String {
    super::api::template_id(index)
}
