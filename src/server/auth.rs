//! API keys: `authorization: Bearer KEY` names the caller's tenant. With no keys configured the
//! service runs open, as the single tenant `default` (a local set-up; the log says so). A key
//! given as `KEY=TENANT:pii` may also read the unredacted transcripts that playbooks keep.
//!
//! Only a digest of each key is held, and a presented key's digest is compared with every one in
//! constant time, so that neither memory nor timing gives a key away.

use crate::service::ServiceError;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tonic::{Request, Status};

#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error("API key entry {entry}: {detail}")]
    Entry { entry: usize, detail: String },
    #[error("{path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The tenant a request acts for, put in its extensions by the interceptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant(pub String);

/// Put in a request's extensions when its key has the `pii` permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PiiReader;

/// One key: the digest of the key, its tenant, and whether it may read unredacted text.
#[derive(Debug, Clone)]
struct Key {
    digest: [u8; 32],
    tenant: String,
    pii: bool,
}

#[derive(Debug, Clone, Default)]
pub struct ApiKeys(Vec<Key>);

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Equal digests, compared without an early exit.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl ApiKeys {
    /// Keys as `KEY=TENANT` (or `KEY=TENANT:pii`) separated by commas or newlines; `#` starts a
    /// comment.
    pub fn parse(text: &str) -> Result<Self, KeysError> {
        let mut keys = Vec::new();
        for (i, entry) in text
            .split([',', '\n'])
            .map(|l| l.split('#').next().unwrap_or("").trim())
            .enumerate()
            .filter(|(_, l)| !l.is_empty())
        {
            let fail = |detail: String| KeysError::Entry {
                entry: i + 1,
                detail,
            };
            let (key, tenant) = entry
                .split_once('=')
                .ok_or_else(|| fail("expected KEY=TENANT".into()))?;
            let (tenant, pii) = match tenant.trim().split_once(':') {
                Some((tenant, "pii")) => (tenant, true),
                Some((_, other)) => {
                    return Err(fail(format!("unknown permission {other:?} (only pii)")));
                }
                None => (tenant, false),
            };
            let (key, tenant) = (key.trim(), tenant.trim());
            if key.len() < 16 || tenant.is_empty() {
                return Err(fail("keys need 16 characters or more, and a tenant".into()));
            }
            let digest = digest(key);
            keys.retain(|k: &Key| !same(&k.digest, &digest));
            keys.push(Key {
                digest,
                tenant: tenant.to_owned(),
                pii,
            });
        }
        Ok(Self(keys))
    }

    /// The key's tenant and permission; every stored digest is compared.
    fn find(&self, key: &str) -> Option<(String, bool)> {
        let presented = digest(key);
        let mut found = None;
        for k in &self.0 {
            if same(&k.digest, &presented) {
                found = Some((k.tenant.clone(), k.pii));
            }
        }
        found
    }

    /// The keys of a file (same format as `parse`) and of the `inline` list together.
    pub fn load(file: Option<&Path>, inline: Option<&str>) -> Result<Self, KeysError> {
        let mut text = inline.unwrap_or_default().to_owned();
        if let Some(path) = file {
            let content = std::fs::read_to_string(path).map_err(|source| KeysError::File {
                path: path.to_owned(),
                source,
            })?;
            text.push('\n');
            text.push_str(&content);
        }
        Self::parse(&text)
    }

    pub fn is_open(&self) -> bool {
        self.0.is_empty()
    }

    /// The interceptor: a request without a known key is UNAUTHENTICATED.
    #[allow(clippy::result_large_err)] // tonic's interceptor signature
    pub fn check(&self, mut req: Request<()>) -> Result<Request<()>, Status> {
        let (tenant, pii) = if self.is_open() {
            // Open, nobody holds the separate permission that unredacted text needs.
            ("default".to_owned(), false)
        } else {
            let unauthenticated =
                |why: &str| Status::from(ServiceError::Unauthenticated(why.into()));
            let key = req
                .metadata()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .ok_or_else(|| unauthenticated("missing `authorization: Bearer KEY`"))?;
            self.find(key.trim())
                .ok_or_else(|| unauthenticated("unknown API key"))?
        };
        req.extensions_mut().insert(Tenant(tenant));
        if pii {
            req.extensions_mut().insert(PiiReader);
        }
        Ok(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_tenants_and_bad_entries_are_refused() {
        let keys =
            ApiKeys::parse("k-acme-0123456789=acme, # comment\nk-globex-012345678=globex").unwrap();
        let mut req = Request::new(());
        req.metadata_mut().insert(
            "authorization",
            "Bearer k-globex-012345678".parse().unwrap(),
        );
        let req = keys.check(req).unwrap();
        assert_eq!(
            req.extensions().get::<Tenant>(),
            Some(&Tenant("globex".into()))
        );
        let err = keys.check(Request::new(())).unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unauthenticated);
        assert!(ApiKeys::parse("short=acme").is_err());
        assert!(ApiKeys::parse("no-tenant-here-at-all").is_err());
        assert!(ApiKeys::parse("").unwrap().is_open());
        // Only digests are held: the key itself is nowhere in memory to be dumped or logged.
        assert!(!format!("{keys:?}").contains("k-globex-012345678"));
    }
}
