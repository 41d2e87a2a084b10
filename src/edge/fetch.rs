//! Outbound `fetch`: [`JwksFetcher`].

use super::backend::EdgeBackend;
use super::js::err;
use crate::store::{JwksFetcher, StoreError};

impl JwksFetcher for EdgeBackend {
    /// Also fetches the secret scanning public keys (`SECRET_SCANNING_KEYS_URL`): GitHub's API
    /// refuses requests without a `User-Agent`.
    async fn fetch_jwks(&self, url: &str) -> Result<String, StoreError> {
        let headers = worker::Headers::new();
        headers.set("user-agent", "patgate").map_err(err)?;
        headers.set("accept", "application/json").map_err(err)?;
        let mut init = worker::RequestInit::new();
        init.with_headers(headers);
        let req = worker::Request::new_with_init(url, &init).map_err(err)?;
        let mut resp = worker::Fetch::Request(req).send().await.map_err(err)?;
        if resp.status_code() != 200 {
            return Err(err(format!(
                "JWKS endpoint answered {}",
                resp.status_code()
            )));
        }
        resp.text().await.map_err(err)
    }
}
