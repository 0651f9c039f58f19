//! One registry host: its HTTP client, its scheme, and its auth state.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures_util::StreamExt;
use reqwest::header::{
    AUTHORIZATION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, WWW_AUTHENTICATE,
};
use reqwest::{Method, StatusCode};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::OnceCell;

use super::credentials::{CredentialStore, Credentials};
use super::{ClientError, ClientOptions, Result};

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a read may wait for data.
const READ_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the HTTPS probe of an insecure registry may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// A registry host.
pub(super) struct Host {
    /// The registry as references name it.
    pub registry: String,
    /// `host[:port]` in URLs (Docker Hub's API lives elsewhere).
    api: String,
    http: reqwest::Client,
    /// For an insecure registry whose certificate does not verify: TLS
    /// without verification, as Docker talks to insecure registries.
    unverified: OnceCell<reqwest::Client>,
    insecure: bool,
    base: OnceCell<String>,
    credentials: CredentialStore,
    auth: Mutex<AuthState>,
    /// Upload chunk size, if chunked.
    pub chunk_size: Option<u64>,
    /// Credentials given for this client, used instead of the store's.
    credentials_override: Option<Credentials>,
}

#[derive(Default)]
struct AuthState {
    challenge: Option<Challenge>,
    /// `Authorization` values by the scopes they were issued for.
    tokens: HashMap<String, String>,
    basic: Option<String>,
}

/// A `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

impl Challenge {
    /// Parses `Basic realm=..` or `Bearer realm="..",service="..",scope=".."`.
    pub(super) fn parse(header: &str) -> Option<Challenge> {
        let (scheme, params) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return Some(Challenge::Basic);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let params = parse_params(params);
        Some(Challenge::Bearer {
            realm: params.get("realm")?.clone(),
            service: params.get("service").cloned(),
        })
    }
}

/// `key="value", key=value` pairs; quoted values may hold commas.
fn parse_params(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            (value, &quoted[end.min(quoted.len())..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        out.insert(key, value);
        rest = next.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

/// Whether `registry` is on the loopback interface, where Docker allows
/// plain HTTP without being told.
fn is_loopback(registry: &str) -> bool {
    let host = match registry.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => registry.rsplit_once(':').map_or(registry, |(h, _)| h),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl Host {
    pub(super) fn new(registry: &str, options: &ClientOptions) -> Result<Host> {
        let api = match registry {
            "docker.io" | "index.docker.io" => "registry-1.docker.io".to_owned(),
            other => other.to_owned(),
        };
        let tls = tls_config(&api, &options.certs_dirs)?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .user_agent(options.user_agent.clone())
            .connect_timeout(CONNECT_TIMEOUT)
            // A registry that stops sending mid-transfer is given up on
            // (and the download resumed) rather than waited for forever.
            .read_timeout(READ_TIMEOUT)
            .pool_max_idle_per_host(16)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| ClientError::Invalid(format!("HTTP client for {registry}: {e}")))?;
        Ok(Host {
            registry: registry.to_owned(),
            insecure: is_loopback(&api)
                || options.insecure_registries.iter().any(|r| r == registry),
            api,
            http,
            unverified: OnceCell::new(),
            base: OnceCell::new(),
            credentials: options.credentials.clone(),
            auth: Mutex::new(AuthState::default()),
            chunk_size: options.chunk_size,
            credentials_override: options.credentials_override.clone(),
        })
    }

    fn transport_error(&self, e: &reqwest::Error) -> ClientError {
        // reqwest's Display hides the cause (refused, TLS, DNS): show it.
        let mut detail = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            detail = format!("{detail}: {s}");
            source = s.source();
        }
        ClientError::Transport {
            registry: self.registry.clone(),
            detail,
        }
    }

    /// `scheme://host` for this registry: HTTPS, or for an insecure one
    /// (loopback, or named insecure) HTTPS when it answers TLS, verified if
    /// its certificate verifies and unverified otherwise, and plain HTTP
    /// when it does not speak TLS, as Docker does.
    async fn base(&self) -> Result<&str> {
        self.base
            .get_or_try_init(|| async {
                let https = format!("https://{}", self.api);
                if !self.insecure {
                    return Ok(https);
                }
                let probe = |client: &reqwest::Client| {
                    client
                        .get(format!("{https}/v2/"))
                        .timeout(PROBE_TIMEOUT)
                        .send()
                };
                if probe(&self.http).await.is_ok() {
                    return Ok(https);
                }
                let mut tls = tls_config(&self.api, &[])?;
                tls.dangerous()
                    .set_certificate_verifier(Arc::new(AnyCertificate(crate::tls::provider())));
                let unverified = reqwest::Client::builder()
                    .tls_backend_preconfigured(tls)
                    .connect_timeout(CONNECT_TIMEOUT)
                    .build()
                    .map_err(|e| {
                        ClientError::Invalid(format!("HTTP client for {}: {e}", self.registry))
                    })?;
                if probe(&unverified).await.is_ok() {
                    let _ = self.unverified.set(unverified);
                    return Ok(https);
                }
                Ok(format!("http://{}", self.api))
            })
            .await
            .map(String::as_str)
    }

    /// The client requests go through.
    /// Downloads `url` (any URL on this host: ADD's sources) into `to`,
    /// following redirects, streaming.
    pub(super) async fn download(&self, url: &str, to: &Path) -> Result<()> {
        use tokio::io::AsyncWriteExt;
        let mut response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| self.transport_error(&e))?;
        if !response.status().is_success() {
            return Err(ClientError::Invalid(format!(
                "GET {url}: the server answered {}",
                response.status()
            )));
        }
        let mut file = tokio::fs::File::create(to)
            .await
            .map_err(|e| ClientError::Invalid(format!("create {}: {e}", to.display())))?;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(&e))?
        {
            file.write_all(&chunk)
                .await
                .map_err(|e| ClientError::Invalid(format!("write {}: {e}", to.display())))?;
        }
        file.flush()
            .await
            .map_err(|e| ClientError::Invalid(format!("write {}: {e}", to.display())))
    }

    fn client(&self) -> &reqwest::Client {
        self.unverified.get().unwrap_or(&self.http)
    }

    fn cached_header(&self, scopes: &[String]) -> Option<String> {
        let auth = self.auth.lock().expect("auth state");
        match auth.challenge {
            Some(Challenge::Basic) => auth.basic.clone(),
            Some(Challenge::Bearer { .. }) => auth.tokens.get(&scopes.join(" ")).cloned(),
            None => None,
        }
    }

    fn known_challenge(&self) -> Option<Challenge> {
        self.auth.lock().expect("auth state").challenge.clone()
    }

    /// Sends the request `make` builds, answering an auth challenge once.
    /// A registry that challenged before gets its credentials up front, so
    /// a request whose body cannot be replayed is sent once.
    pub(super) async fn send(
        &self,
        scopes: &[String],
        make: impl Fn(&str, &reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response> {
        let base = self.base().await?;
        if let Some(challenge) = self.known_challenge()
            && self.cached_header(scopes).is_none()
        {
            self.authenticate(&challenge, scopes).await?;
        }
        for attempt in 0..2 {
            let mut request = make(base, self.client())
                .build()
                .map_err(|e| self.transport_error(&e))?;
            // Credentials go to this registry only: an upload location on
            // another host (or scheme) gets none.
            if same_origin(request.url(), base)
                && let Some(header) = self.cached_header(scopes)
                && let Ok(value) = reqwest::header::HeaderValue::from_str(&header)
            {
                request.headers_mut().insert(AUTHORIZATION, value);
            }
            let response = self
                .client()
                .execute(request)
                .await
                .map_err(|e| self.transport_error(&e))?;
            if response.status() == StatusCode::UNAUTHORIZED
                && attempt == 0
                && let Some(challenge) = response
                    .headers()
                    .get(WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(Challenge::parse)
            {
                self.authenticate(&challenge, scopes).await?;
                continue;
            }
            return Ok(response);
        }
        unreachable!("the loop returns on its second pass")
    }

    /// Sends `method url` with the body `body` makes (made again for a
    /// retry after an auth challenge), saying which bytes of the blob it
    /// holds when `range` is given.
    pub(super) async fn send_with_body(
        &self,
        scopes: &[String],
        method: Method,
        url: &str,
        range: Option<(u64, u64)>,
        body: impl Fn() -> Result<(reqwest::Body, u64)>,
    ) -> Result<reqwest::Response> {
        // Make the body up front so an error opening it is not an HTTP one.
        let first = std::sync::Mutex::new(Some(body()?));
        self.send(scopes, |_, http| {
            let (b, len) = match first.lock().expect("body slot").take() {
                Some(made) => made,
                None => match body() {
                    Ok(made) => made,
                    Err(_) => (reqwest::Body::from(Vec::new()), 0),
                },
            };
            let request = http
                .request(method.clone(), url)
                .header(CONTENT_TYPE, "application/octet-stream")
                .header(CONTENT_LENGTH, len);
            let request = match range {
                Some((start, n)) if n > 0 => {
                    request.header(CONTENT_RANGE, format!("{start}-{}", start + n - 1))
                }
                _ => request,
            };
            request.body(b)
        })
        .await
    }

    async fn stored_credentials(&self) -> Result<Option<Credentials>> {
        if let Some(given) = &self.credentials_override {
            return Ok(Some(given.clone()));
        }
        let store = self.credentials.clone();
        let registry = self.registry.clone();
        tokio::task::spawn_blocking(move || store.get(&registry))
            .await
            .expect("credential lookup does not panic")
            .map_err(ClientError::Credentials)
    }

    async fn authenticate(&self, challenge: &Challenge, scopes: &[String]) -> Result<()> {
        let credentials = self.stored_credentials().await?;
        self.authenticate_with(challenge, scopes, credentials.as_ref())
            .await
    }

    async fn authenticate_with(
        &self,
        challenge: &Challenge,
        scopes: &[String],
        credentials: Option<&Credentials>,
    ) -> Result<()> {
        let header = match challenge {
            Challenge::Basic => {
                let Some(c) = credentials else {
                    return Err(self.unauthorized("the registry wants a user name and password"));
                };
                let pair = format!("{}:{}", c.username, c.password);
                format!("Basic {}", STANDARD.encode(pair))
            }
            Challenge::Bearer { realm, service } => {
                let token = self
                    .fetch_token(realm, service.as_deref(), scopes, credentials)
                    .await?;
                format!("Bearer {token}")
            }
        };
        let mut auth = self.auth.lock().expect("auth state");
        auth.challenge = Some(challenge.clone());
        match challenge {
            Challenge::Basic => auth.basic = Some(header),
            Challenge::Bearer { .. } => {
                auth.tokens.insert(scopes.join(" "), header);
            }
        }
        Ok(())
    }

    fn unauthorized(&self, detail: &str) -> ClientError {
        ClientError::Unauthorized {
            registry: self.registry.clone(),
            repository: String::new(),
            detail: format!(": {detail}"),
        }
    }

    /// A bearer token from `realm` for `scopes`: with a refresh token by
    /// OAuth2, else by GET with basic credentials (or none: anonymous).
    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
        credentials: Option<&Credentials>,
    ) -> Result<String> {
        if realm.starts_with("http://") && !self.insecure && credentials.is_some() {
            return Err(ClientError::Invalid(format!(
                "{} sends credentials to {realm} over plain HTTP; refusing (mark the registry insecure to allow it)",
                self.registry
            )));
        }
        let request = match credentials.and_then(|c| c.identity_token.as_deref()) {
            Some(refresh) => {
                let mut form = vec![
                    ("grant_type", "refresh_token".to_owned()),
                    ("refresh_token", refresh.to_owned()),
                    ("client_id", "berth".to_owned()),
                    ("scope", scopes.join(" ")),
                ];
                if let Some(s) = service {
                    form.push(("service", s.to_owned()));
                }
                let body = form
                    .iter()
                    .map(|(k, v)| format!("{k}={}", crate::wire::percent_encode(v)))
                    .collect::<Vec<_>>()
                    .join("&");
                self.client()
                    .post(realm)
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(body)
            }
            None => {
                let mut query: Vec<(&str, &str)> = Vec::new();
                if let Some(s) = service {
                    query.push(("service", s));
                }
                for scope in scopes {
                    query.push(("scope", scope));
                }
                let separator = if realm.contains('?') { '&' } else { '?' };
                let qs = query
                    .iter()
                    .map(|(k, v)| format!("{k}={}", crate::wire::percent_encode(v)))
                    .collect::<Vec<_>>()
                    .join("&");
                let mut request = self.client().get(format!("{realm}{separator}{qs}"));
                if let Some(c) = credentials {
                    request = request.basic_auth(&c.username, Some(&c.password));
                }
                request
            }
        };
        let response = request.send().await.map_err(|e| self.transport_error(&e))?;
        if response.status() == StatusCode::UNAUTHORIZED
            || response.status() == StatusCode::FORBIDDEN
        {
            return Err(self.unauthorized(if credentials.is_some() {
                "incorrect username or password"
            } else {
                "the registry issues no anonymous tokens"
            }));
        }
        if !response.status().is_success() {
            return Err(ClientError::Http {
                registry: self.registry.clone(),
                status: response.status().as_u16(),
                what: format!("a token from {realm}"),
                detail: String::new(),
            });
        }
        let bytes = read_limited(response, 1 << 20, &self.registry).await?;
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| ClientError::Invalid(format!("token response from {realm}: {e}")))?;
        value
            .get("token")
            .or_else(|| value.get("access_token"))
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| ClientError::Invalid(format!("{realm} sent no token")))
    }

    /// Checks `credentials`: the API base must answer with them.
    pub(super) async fn login(&self, credentials: &Credentials) -> Result<()> {
        let base = self.base().await?;
        let url = format!("{base}/v2/");
        let response = self
            .client()
            .get(&url)
            .send()
            .await
            .map_err(|e| self.transport_error(&e))?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return super::error::check(response, &self.registry, "", "the API")
                .await
                .map(drop);
        }
        let challenge = response
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(Challenge::parse)
            .ok_or_else(|| {
                ClientError::Invalid(format!(
                    "{} asked for auth without saying how",
                    self.registry
                ))
            })?;
        self.authenticate_with(&challenge, &[], Some(credentials))
            .await?;
        let response = self
            .client()
            .get(&url)
            .header(AUTHORIZATION, self.cached_header(&[]).unwrap_or_default())
            .send()
            .await
            .map_err(|e| self.transport_error(&e))?;
        if response.status() == StatusCode::UNAUTHORIZED {
            return Err(self.unauthorized("incorrect username or password"));
        }
        super::error::check(response, &self.registry, "", "the API")
            .await
            .map(drop)
    }
}

/// Whether `url` is on the registry whose base is `base` (same scheme,
/// host and port).
fn same_origin(url: &reqwest::Url, base: &str) -> bool {
    reqwest::Url::parse(base).is_ok_and(|b| b.origin() == url.origin())
}

/// Reads a response body of at most `limit` bytes.
pub(super) async fn read_limited(
    response: reqwest::Response,
    limit: u64,
    registry: &str,
) -> Result<Vec<u8>> {
    if response.content_length().is_some_and(|n| n > limit) {
        return Err(ClientError::Invalid(format!(
            "{registry} sent a document larger than {limit} bytes"
        )));
    }
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ClientError::Transport {
            registry: registry.to_owned(),
            detail: e.to_string(),
        })?;
        body.extend_from_slice(&chunk);
        if body.len() as u64 > limit {
            return Err(ClientError::Invalid(format!(
                "{registry} sent a document larger than {limit} bytes"
            )));
        }
    }
    Ok(body)
}

/// A streamed request body of `len` bytes of `file` from `offset`,
/// reporting bytes sent.
pub(super) fn file_body(
    mut file: std::fs::File,
    offset: u64,
    len: u64,
    progress: Arc<dyn Fn(u64) + Send + Sync>,
) -> Result<reqwest::Body> {
    use std::io::Seek;
    file.seek(std::io::SeekFrom::Start(offset))
        .map_err(|e| ClientError::Io(format!("seek in a blob: {e}")))?;
    let file = tokio::io::AsyncReadExt::take(tokio::fs::File::from_std(file), len);
    let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 << 10);
    let mut sent = 0u64;
    Ok(reqwest::Body::wrap_stream(stream.map(move |chunk| {
        if let Ok(c) = &chunk {
            sent += c.len() as u64;
            progress(sent);
        }
        chunk
    })))
}

/// Accepts any server certificate (signatures still checked): how Docker
/// talks TLS to a registry the user declared insecure.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The system's roots, loaded once per process.
fn native_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| rustls_native_certs::load_native_certs().certs)
}

/// TLS for `api`: the system roots plus `<dir>/<api>/*.crt` CAs, and a
/// client certificate from `<dir>/<api>/*.cert` with its `.key`.
fn tls_config(api: &str, certs_dirs: &[PathBuf]) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(native_roots().iter().cloned());
    let mut client_cert = None;
    for dir in certs_dirs.iter().map(|d| d.join(api)) {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for path in paths {
            match path.extension().and_then(|e| e.to_str()) {
                Some("crt") => {
                    for cert in read_certs(&path)? {
                        roots.add(cert).map_err(|e| {
                            ClientError::Invalid(format!("CA {}: {e}", path.display()))
                        })?;
                    }
                }
                Some("cert") if client_cert.is_none() => {
                    let key = path.with_extension("key");
                    let chain = read_certs(&path)?;
                    let key = PrivateKeyDer::from_pem_file(&key).map_err(|e| {
                        ClientError::Invalid(format!("client key {}: {e}", key.display()))
                    })?;
                    client_cert = Some((chain, key));
                }
                _ => {}
            }
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Invalid(e.to_string()))?
        .with_root_certificates(roots);
    let mut config = match client_cert {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| ClientError::Invalid(format!("client certificate for {api}: {e}")))?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| ClientError::Invalid(format!("certificate {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse() {
        assert_eq!(
            Challenge::parse(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
            })
        );
        assert_eq!(
            Challenge::parse("Basic realm=\"x\""),
            Some(Challenge::Basic)
        );
        assert_eq!(Challenge::parse("Negotiate"), None);
        let p = parse_params(r#"realm="a,b", service=svc ,error="insufficient_scope""#);
        assert_eq!(p["realm"], "a,b");
        assert_eq!(p["service"], "svc");
        assert_eq!(p["error"], "insufficient_scope");
    }

    #[test]
    fn credentials_stay_on_the_registrys_origin() {
        let url = |u: &str| reqwest::Url::parse(u).unwrap();
        let base = "https://reg.example:5000";
        assert!(same_origin(
            &url("https://reg.example:5000/v2/x/blobs/uploads/1"),
            base
        ));
        assert!(!same_origin(
            &url("https://storage.example/upload?sig=1"),
            base
        ));
        assert!(
            !same_origin(&url("http://reg.example:5000/v2/"), base),
            "downgraded scheme"
        );
        assert!(
            !same_origin(&url("https://reg.example/v2/"), base),
            "other port"
        );
    }

    #[test]
    fn loopback_registries_are_insecure_by_default() {
        for r in [
            "localhost:5000",
            "127.0.0.1:5000",
            "[::1]:5000",
            "localhost",
        ] {
            assert!(is_loopback(r), "{r}");
        }
        for r in ["docker.io", "registry.example:5000", "10.0.0.1:5000"] {
            assert!(!is_loopback(r), "{r}");
        }
    }
}
