//! An organisation webhook's deliveries: listing them (`GET
//! /orgs/{org}/hooks/{hook_id}/deliveries`, newest first, cursor pages) and asking for one
//! again (`POST .../deliveries/{delivery_id}/attempts`). Schema `hook-delivery-item`.

use serde::Deserialize;

use crate::client::{Client, Error, Method, Page, Url};

/// One delivery of a webhook, as GitHub lists them. Each attempt (a redelivery too) is listed
/// with its own `id` and the delivery's `guid` (the `X-GitHub-Delivery` header).
#[derive(Clone, Debug, Deserialize)]
pub struct HookDelivery {
    pub id: u64,
    pub guid: String,
    pub delivered_at: jiff::Timestamp,
    pub event: String,
}

impl Client {
    /// One page of an organisation webhook's deliveries (the first when `next` is `None`) and
    /// the link to the next. `None` when GitHub knows no such hook (or the token may not see
    /// it).
    pub async fn hook_deliveries(
        &self,
        org: &str,
        hook_id: u64,
        next: Option<&Url>,
    ) -> Result<Option<(Vec<HookDelivery>, Option<Url>)>, Error> {
        let hook = hook_id.to_string();
        let segments = ["orgs", org, "hooks", &hook, "deliveries"];
        let page = match next {
            Some(url) => Page::Next(url),
            None => Page::First(&segments, &[]),
        };
        self.get_page(page).await
    }

    /// Asks GitHub to send delivery `id` of an organisation webhook again.
    pub async fn redeliver(&self, org: &str, hook_id: u64, id: u64) -> Result<(), Error> {
        let (hook, id) = (hook_id.to_string(), id.to_string());
        self.mutate::<serde::de::IgnoredAny>(
            Method::POST,
            &["orgs", org, "hooks", &hook, "deliveries", &id, "attempts"],
            None::<&()>,
        )
        .await
        .map(drop)
    }
}
