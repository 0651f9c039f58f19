//! Who may do what: no auth, basic auth from an htpasswd file, or bearer
//! tokens from the built-in issuer (the flow Docker Hub, GHCR and ECR use).
//!
//! Tokens are `base64url(claims).base64url(hmac-sha256(key, claims))`, with
//! the claims naming the subject, expiry and granted scopes. The key is
//! random per process: a restart invalidates outstanding tokens, and clients
//! simply ask for new ones.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// The service name the registry announces in bearer challenges.
pub const SERVICE: &str = "berth-registry";
/// How long an issued token is valid.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(300);

/// The access rules of a registry.
#[derive(Debug, Clone, Default)]
pub enum Auth {
    /// Everyone may do everything.
    #[default]
    None,
    /// HTTP basic auth against an htpasswd file; any user may do anything.
    Basic(Htpasswd),
    /// Bearer tokens issued at `/token` to users of the htpasswd file.
    Token(TokenIssuer),
}

/// Users and their bcrypt password hashes, from an htpasswd file.
#[derive(Clone)]
pub struct Htpasswd {
    users: Arc<HashMap<String, String>>,
    /// Hashes of passwords already verified, so bcrypt's deliberate cost is
    /// paid once per user and not on every request.
    verified: Arc<Mutex<HashMap<String, [u8; 32]>>>,
}

// Hashes and keys are secrets: Debug shows neither.
impl std::fmt::Debug for Htpasswd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Htpasswd")
            .field("users", &self.users.len())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("anonymous_pull", &self.anonymous_pull)
            .finish_non_exhaustive()
    }
}

impl Htpasswd {
    /// Reads an htpasswd file of `user:bcrypt-hash` lines. Other hash
    /// schemes are refused by name, since they are unsafe.
    pub fn load(path: &Path) -> Result<Htpasswd, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("read htpasswd file {}: {e}", path.display()))?;
        Htpasswd::parse(&text).map_err(|e| format!("htpasswd file {}: {e}", path.display()))
    }

    /// Parses htpasswd text.
    pub fn parse(text: &str) -> Result<Htpasswd, String> {
        let mut users = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((user, hash)) = line.split_once(':') else {
                return Err(format!("line {}: expected user:hash", n + 1));
            };
            if !(hash.starts_with("$2y$") || hash.starts_with("$2b$") || hash.starts_with("$2a$")) {
                return Err(format!(
                    "line {}: user {user:?} has a non-bcrypt hash; create it with `htpasswd -B`",
                    n + 1
                ));
            }
            users.insert(user.to_owned(), hash.to_owned());
        }
        Ok(Htpasswd {
            users: Arc::new(users),
            verified: Arc::default(),
        })
    }

    /// Whether `password` is `user`'s. Runs bcrypt (tens of milliseconds)
    /// the first time a pair is seen; call it off the async threads.
    pub fn verify(&self, user: &str, password: &str) -> bool {
        let Some(hash) = self.users.get(user) else {
            return false;
        };
        let fingerprint: [u8; 32] = Sha256::digest(format!("{user}\0{password}")).into();
        if self.verified.lock().expect("auth cache").get(user) == Some(&fingerprint) {
            return true;
        }
        let ok = bcrypt::verify(password, hash).unwrap_or(false);
        if ok {
            self.verified
                .lock()
                .expect("auth cache")
                .insert(user.to_owned(), fingerprint);
        }
        ok
    }
}

/// One granted or requested scope: `repository:<name>:<actions>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    /// `repository` or `registry`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The repository name, or `catalog`.
    pub name: String,
    /// `pull`, `push`, `delete` or `*`.
    pub actions: Vec<String>,
}

impl Access {
    /// Parses a `scope` parameter: `type:name:action,action`. The name may
    /// itself contain `:` (a registry host with a port), so the type is the
    /// first field and the actions the last.
    pub fn parse_scope(scope: &str) -> Option<Access> {
        let (kind, rest) = scope.split_once(':')?;
        let (name, actions) = rest.rsplit_once(':')?;
        Some(Access {
            kind: kind.to_owned(),
            name: name.to_owned(),
            actions: actions.split(',').map(str::to_owned).collect(),
        })
    }

    /// The scope string of this access.
    pub fn scope(&self) -> String {
        format!("{}:{}:{}", self.kind, self.name, self.actions.join(","))
    }

    /// Whether this grant covers `action` on `kind:name`.
    pub fn allows(&self, kind: &str, name: &str, action: &str) -> bool {
        self.kind == kind
            && self.name == name
            && self.actions.iter().any(|a| a == action || a == "*")
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
    access: Vec<Access>,
}

/// Issues and checks bearer tokens for the users of an htpasswd file.
#[derive(Clone)]
pub struct TokenIssuer {
    users: Htpasswd,
    key: Arc<[u8; 32]>,
    /// Whether a client without credentials gets pull access.
    pub anonymous_pull: bool,
    /// The token endpoint's URL announced in challenges; `None`: this
    /// server's `/token` at the scheme and host the request came in on
    /// (behind a proxy, set it: the `Host` header is the client's word).
    pub realm: Option<String>,
}

impl TokenIssuer {
    /// An issuer for `users` with a fresh random key.
    pub fn new(users: Htpasswd, anonymous_pull: bool) -> TokenIssuer {
        let mut key = [0u8; 32];
        key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        TokenIssuer {
            users,
            key: Arc::new(key),
            anonymous_pull,
            realm: None,
        }
    }

    /// The users.
    pub fn users(&self) -> &Htpasswd {
        &self.users
    }

    /// A token for `subject` (`None`: anonymous) granting what it may have
    /// of `requested`.
    pub fn issue(&self, subject: Option<&str>, requested: &[Access]) -> String {
        let granted = requested
            .iter()
            .filter_map(|a| {
                let actions: Vec<String> = a
                    .actions
                    .iter()
                    .filter(|action| {
                        subject.is_some() || (self.anonymous_pull && *action == "pull")
                    })
                    .cloned()
                    .collect();
                (!actions.is_empty()).then(|| Access {
                    actions,
                    ..a.clone()
                })
            })
            .collect();
        let claims = Claims {
            sub: subject.unwrap_or("").to_owned(),
            exp: unix_now() + TOKEN_LIFETIME.as_secs(),
            access: granted,
        };
        let payload =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("claims serialise"));
        let signature = URL_SAFE_NO_PAD.encode(self.sign(payload.as_bytes()));
        format!("{payload}.{signature}")
    }

    /// The grants of a valid, unexpired `token`, or `None`.
    pub fn check(&self, token: &str) -> Option<Vec<Access>> {
        let (payload, signature) = token.split_once('.')?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        mac.verify_slice(&signature).ok()?;
        let claims: Claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        (claims.exp > unix_now()).then_some(claims.access)
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.key[..]).expect("HMAC takes any key length")
    }

    fn sign(&self, data: &[u8]) -> Vec<u8> {
        let mut mac = self.mac();
        mac.update(data);
        mac.finalize().into_bytes().to_vec()
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The user and password of a `Basic` authorization header.
pub fn parse_basic(header: &str) -> Option<(String, String)> {
    let encoded = header
        .strip_prefix("Basic ")
        .or_else(|| header.strip_prefix("basic "))?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// The token of a `Bearer` authorization header.
pub fn parse_bearer(header: &str) -> Option<&str> {
    header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> Htpasswd {
        let hash = bcrypt::hash("secret", 4).unwrap();
        Htpasswd::parse(&format!("# users\nalice:{hash}\n")).unwrap()
    }

    #[test]
    fn htpasswd_verifies_bcrypt_and_refuses_other_schemes() {
        let users = users();
        assert!(users.verify("alice", "secret"));
        assert!(users.verify("alice", "secret"), "cached");
        assert!(!users.verify("alice", "wrong"));
        assert!(!users.verify("bob", "secret"));
        let err = Htpasswd::parse("bob:{SHA}abc").unwrap_err();
        assert!(err.contains("htpasswd -B"), "{err}");
    }

    #[test]
    fn tokens_grant_what_was_asked_and_expire_with_the_key() {
        let issuer = TokenIssuer::new(users(), true);
        let scope = Access::parse_scope("repository:localhost:5000/a/b:pull,push").unwrap();
        assert_eq!(scope.name, "localhost:5000/a/b");
        let token = issuer.issue(Some("alice"), std::slice::from_ref(&scope));
        let grants = issuer.check(&token).unwrap();
        assert!(grants[0].allows("repository", "localhost:5000/a/b", "push"));

        let anonymous = issuer.issue(None, std::slice::from_ref(&scope));
        let grants = issuer.check(&anonymous).unwrap();
        assert!(grants[0].allows("repository", "localhost:5000/a/b", "pull"));
        assert!(!grants[0].allows("repository", "localhost:5000/a/b", "push"));

        let other = TokenIssuer::new(users(), true);
        assert!(other.check(&token).is_none(), "another key");
        let (payload, _) = token.split_once('.').unwrap();
        assert!(issuer.check(&format!("{payload}.AAAA")).is_none());
    }

    #[test]
    fn a_configured_realm_is_kept() {
        let mut issuer = TokenIssuer::new(users(), false);
        assert_eq!(issuer.realm, None);
        issuer.realm = Some("https://auth.example/token".into());
        assert!(
            format!("{issuer:?}").contains("anonymous_pull"),
            "no key in Debug"
        );
        assert!(!format!("{issuer:?}").contains("key"));
    }

    #[test]
    fn basic_headers_parse() {
        assert_eq!(
            parse_basic("Basic YWxpY2U6c2VjcmV0"),
            Some(("alice".into(), "secret".into()))
        );
        assert_eq!(parse_basic("Bearer x"), None);
        assert_eq!(parse_bearer("Bearer abc"), Some("abc"));
    }
}
