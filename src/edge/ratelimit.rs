//! Rate Limiting bindings: [`RateLimiter`].

use super::backend::EdgeBackend;
use super::counters::{bump, Op};
use super::js::err;
use crate::store::{Limit, RateLimiter, StoreError};

/// The Rate Limiting binding of each limit (wrangler.toml `[[ratelimits]]`). A binding that is not
/// configured means no limit.
fn limit_binding(limit: Limit) -> &'static str {
    match limit {
        Limit::FailedAuthPerClient => "RL_FAILED_AUTH_CLIENT",
        Limit::FailedAuthPerIp => "RL_FAILED_AUTH_IP",
        Limit::PatCreationsPerUser => "RL_PAT_CREATE",
        Limit::TokenEndpointPerIp => "RL_TOKEN_IP",
        Limit::RotationsPerPat => "RL_ROTATE",
        Limit::RegistrationsPerIp => "RL_REGISTER_IP",
        Limit::MetadataFetches => "RL_CIMD_FETCH",
    }
}

impl RateLimiter for EdgeBackend {
    async fn over_limit(&self, limit: Limit, key: &str) -> Result<bool, StoreError> {
        let Ok(binding) = self.env.rate_limiter(limit_binding(limit)) else {
            return Ok(false);
        };
        bump(Op::RateLimit);
        let outcome = binding.limit(key.to_owned()).await.map_err(err)?;
        Ok(!outcome.success)
    }
}
