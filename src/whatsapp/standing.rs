//! What Meta says of a business number itself: its display number, quality rating, throughput
//! level and its business portfolio's messaging limit (`GET /{phone_number_id}`), read by
//! `reminderd numbers` for each configured number with that number's own token.

use serde::{Deserialize, Serialize};

use super::{Client, SendError};

/// The fields asked for: everything `reminderd numbers` shows.
const FIELDS: &str = "display_phone_number,verified_name,quality_rating,throughput,whatsapp_business_manager_messaging_limit";

/// A business number's standing, as the Graph API reports it (absent fields are `None`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Standing {
    /// The number as patients see it, e.g. `+1 555-000-0001`.
    pub display_phone_number: Option<String>,
    /// The business name Meta verified for it.
    pub verified_name: Option<String>,
    /// `GREEN`, `YELLOW`, `RED` or `UNKNOWN`.
    pub quality_rating: Option<String>,
    /// `STANDARD` (80 messages a second) or `HIGH` (up to 1,000).
    pub throughput: Option<String>,
    /// The business portfolio's messaging limit: `TIER_250` ... `TIER_UNLIMITED`.
    pub messaging_limit: Option<String>,
}

#[derive(Deserialize)]
struct Raw {
    display_phone_number: Option<String>,
    verified_name: Option<String>,
    quality_rating: Option<String>,
    throughput: Option<Throughput>,
    whatsapp_business_manager_messaging_limit: Option<String>,
}

#[derive(Deserialize)]
struct Throughput {
    level: Option<String>,
}

impl Standing {
    /// The number's display form as digits only, as webhooks write it (`15550000001`).
    pub fn digits(&self) -> Option<String> {
        self.display_phone_number
            .as_ref()
            .map(|d| d.chars().filter(char::is_ascii_digit).collect::<String>())
    }
}

impl Client {
    /// Reads this client's number's standing.
    pub async fn standing(&self) -> Result<Standing, SendError> {
        let url = format!(
            "{}/{}/{}?fields={FIELDS}",
            self.base, self.version, self.phone_number_id
        );
        let raw: Raw = self.get_json(&url, "phone number").await?;
        Ok(Standing {
            display_phone_number: raw.display_phone_number,
            verified_name: raw.verified_name,
            quality_rating: raw.quality_rating,
            throughput: raw.throughput.and_then(|t| t.level),
            messaging_limit: raw.whatsapp_business_manager_messaging_limit,
        })
    }
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use crate::sim::{Sim, SimConfig, SimNumber};
    use crate::whatsapp::{Client, SendError};

    #[tokio::test]
    async fn each_number_reads_its_own_standing_with_its_own_token() {
        let sim = Sim::start(SimConfig {
            access_token: "main-token".into(),
            numbers: vec![SimNumber {
                quality_rating: "YELLOW".into(),
                messaging_limit: "TIER_10K".into(),
                ..SimNumber::new("300000000000003", "b-token")
            }],
            ..SimConfig::default()
        })
        .await
        .expect("sim");
        let mut config = crate::config::Config::example().expect("config");
        let mut wa = config.whatsapp.take().expect("[whatsapp]");
        wa.phone_number_id = sim.config().phone_number_id.clone();
        let main = Client::new(&wa, SecretString::from("main-token"), Some(&sim.base_url()))
            .expect("client");
        let standing = main.standing().await.expect("main standing");
        assert_eq!(standing.quality_rating.as_deref(), Some("GREEN"));
        assert_eq!(standing.throughput.as_deref(), Some("STANDARD"));
        assert_eq!(standing.digits().as_deref(), Some("15550000000"));

        let number = crate::config::Number {
            name: "brand-b".into(),
            phone_number_id: "300000000000003".into(),
            waba_id: "900000000000003".into(),
            rate_limit_per_sec: 80,
            own_token: true,
        };
        let b = main.for_number(&number, Some(SecretString::from("b-token")));
        let standing = b.standing().await.expect("brand-b standing");
        assert_eq!(standing.quality_rating.as_deref(), Some("YELLOW"));
        assert_eq!(standing.messaging_limit.as_deref(), Some("TIER_10K"));
        // The main token cannot read another business's number.
        let wrong = main.for_number(&number, None);
        assert!(matches!(
            wrong.standing().await,
            Err(SendError::Api { code: 190, .. })
        ));
        sim.shutdown().await;
    }
}
