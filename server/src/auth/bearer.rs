//! The one shape every machine credential takes on the wire:
//! `Authorization: Bearer [prefix]<tenant>.<id>.<secret>`.
//!
//! Agent credentials (no prefix) and operator API keys (`sk_`) differ only
//! in their prefix and in which table holds the hash of the secret, so the
//! header is read and split here once, and each extractor checks its own
//! secret. Anything that does not split cleanly is simply "no credential":
//! the caller answers 401 without saying which part was wrong.

use std::str::FromStr;

use actix_web::HttpRequest;
use actix_web::http::header::AUTHORIZATION;
use stowage_protocol::ids::TenantId;

/// The `Authorization` header of `request`, when it is present and text.
pub fn header(request: &HttpRequest) -> Option<String> {
    request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

/// The tenant, the credential id and the secret of a `Bearer` header whose
/// token starts with `prefix`; `None` when any part is missing or malformed.
pub fn parse<'a, Id: FromStr>(
    header: Option<&'a str>,
    prefix: &str,
) -> Option<(TenantId, Id, &'a str)> {
    let token = header?
        .strip_prefix("Bearer ")?
        .trim()
        .strip_prefix(prefix)?;
    let mut parts = token.splitn(3, '.');
    let tenant = parts.next()?.parse().ok()?;
    let id = parts.next()?.parse().ok()?;
    let secret = parts.next()?;
    Some((tenant, id, secret))
}

#[cfg(test)]
mod tests {
    use stowage_protocol::ids::AgentId;

    use super::*;

    #[test]
    fn a_well_formed_header_splits_into_tenant_id_and_secret() {
        let tenant = TenantId::from_bytes([1; 16]);
        let agent = AgentId::from_bytes([2; 16]);
        let header = format!("Bearer sk_{tenant}.{agent}.s3cr.et ");

        let parsed = parse::<AgentId>(Some(&header), "sk_");

        assert_eq!(parsed, Some((tenant, agent, "s3cr.et")));
    }

    #[test]
    fn a_missing_prefix_part_or_scheme_is_no_credential() {
        let tenant = TenantId::from_bytes([1; 16]);
        let agent = AgentId::from_bytes([2; 16]);
        for header in [
            format!("Bearer {tenant}.{agent}.secret"),
            format!("Basic sk_{tenant}.{agent}.secret"),
            format!("Bearer sk_{tenant}.{agent}"),
            format!("Bearer sk_{tenant}.not-hex.secret"),
            String::new(),
        ] {
            assert_eq!(parse::<AgentId>(Some(&header), "sk_"), None, "{header:?}");
        }
        assert_eq!(parse::<AgentId>(None, ""), None);
    }
}
