//! Which endpoint a request path names.
//!
//! Repository names contain `/` and may even have a component called
//! `manifests` or `blobs`, so routes are found from the end of the path: the
//! last `/manifests/` whose tail has no `/` is the manifest endpoint, and so
//! on.

/// An endpoint of the distribution API, with the parts of its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route<'a> {
    /// `/v2/`: the API's base, used to probe for auth.
    Base,
    /// `/v2/_catalog`.
    Catalog,
    /// The token issuer's endpoint.
    Token,
    /// `/v2/<name>/tags/list`.
    Tags { name: &'a str },
    /// `/v2/<name>/manifests/<reference>`.
    Manifest { name: &'a str, reference: &'a str },
    /// `/v2/<name>/referrers/<digest>`.
    Referrers { name: &'a str, digest: &'a str },
    /// `/v2/<name>/blobs/uploads/` (start an upload).
    UploadStart { name: &'a str },
    /// `/v2/<name>/blobs/uploads/<uuid>`.
    Upload { name: &'a str, uuid: &'a str },
    /// `/v2/<name>/blobs/<digest>`.
    Blob { name: &'a str, digest: &'a str },
}

/// The path of the token endpoint.
pub const TOKEN_PATH: &str = "/token";

impl<'a> Route<'a> {
    /// The route `path` names, or `None` for anything else.
    pub fn parse(path: &'a str) -> Option<Route<'a>> {
        if path == TOKEN_PATH {
            return Some(Route::Token);
        }
        let rest = path.strip_prefix("/v2")?;
        if rest.is_empty() || rest == "/" {
            return Some(Route::Base);
        }
        let rest = rest.strip_prefix('/')?;
        if rest == "_catalog" {
            return Some(Route::Catalog);
        }
        if let Some(name) = rest.strip_suffix("/tags/list") {
            return Some(Route::Tags { name });
        }
        let tail = |sep: &str| {
            rest.rsplit_once(sep)
                .filter(|(name, tail)| !name.is_empty() && !tail.contains('/'))
        };
        if let Some((name, reference)) = tail("/manifests/") {
            return Some(Route::Manifest { name, reference });
        }
        if let Some((name, digest)) = tail("/referrers/") {
            return Some(Route::Referrers { name, digest });
        }
        if let Some((name, uuid)) = tail("/blobs/uploads/") {
            return Some(if uuid.is_empty() {
                Route::UploadStart { name }
            } else {
                Route::Upload { name, uuid }
            });
        }
        if let Some(name) = rest.strip_suffix("/blobs/uploads") {
            return Some(Route::UploadStart { name });
        }
        if let Some((name, digest)) = tail("/blobs/") {
            return Some(Route::Blob { name, digest });
        }
        None
    }

    /// The repository the route acts on.
    pub fn name(&self) -> Option<&'a str> {
        match *self {
            Route::Tags { name }
            | Route::Manifest { name, .. }
            | Route::Referrers { name, .. }
            | Route::UploadStart { name }
            | Route::Upload { name, .. }
            | Route::Blob { name, .. } => Some(name),
            Route::Base | Route::Catalog | Route::Token => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Route::{self, *};

    #[test]
    fn routes_are_found_from_the_end() {
        let cases: &[(&str, Option<Route>)] = &[
            ("/v2/", Some(Base)),
            ("/v2", Some(Base)),
            ("/v2/_catalog", Some(Catalog)),
            ("/token", Some(Token)),
            ("/v2/a/b/tags/list", Some(Tags { name: "a/b" })),
            (
                "/v2/a/manifests/b/manifests/latest",
                Some(Manifest {
                    name: "a/manifests/b",
                    reference: "latest",
                }),
            ),
            ("/v2/a/blobs/uploads/", Some(UploadStart { name: "a" })),
            (
                "/v2/a/blobs/uploads/123",
                Some(Upload {
                    name: "a",
                    uuid: "123",
                }),
            ),
            (
                "/v2/x/blobs/sha256:ab",
                Some(Blob {
                    name: "x",
                    digest: "sha256:ab",
                }),
            ),
            (
                "/v2/x/referrers/sha256:ab",
                Some(Referrers {
                    name: "x",
                    digest: "sha256:ab",
                }),
            ),
            ("/v2/manifests/x", None),
            ("/v3/a/manifests/x", None),
            ("/other", None),
        ];
        for (path, want) in cases {
            assert_eq!(&Route::parse(path), want, "{path}");
        }
    }
}
