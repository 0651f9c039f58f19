//! COPY and ADD: layers written straight from the sources (the context,
//! another stage or image, heredocs, URLs, local archives).

use super::*;

impl Builder<'_> {
    pub(super) fn copy(
        &self,
        stage: usize,
        step: usize,
        ins: &Instruction,
        state: &State,
        scope: &Scope,
        spec: &CopySpec,
    ) -> Result<State, BuildError> {
        let line = ins.line;
        let look = self.lookup(state, scope);
        let word = |w: &str| self.expand(line, w, &look);
        let keyword = if spec.add { "ADD" } else { "COPY" };
        let dest_written = word(&spec.dest)?;
        let from = spec.from.as_deref().map(word).transpose()?;
        let chown = spec.chown.as_deref().map(word).transpose()?;
        let chmod = match spec.chmod.as_deref().map(word).transpose()? {
            Some(m) => Some(
                u32::from_str_radix(&m, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| {
                        fail(
                            line,
                            format!("invalid --chmod={m}: use an octal mode such as 755"),
                        )
                    })?,
            ),
            None => None,
        };
        // Where the files come from.
        let from_state = match &from {
            Some(f) => Some(self.source_state(stage, line, f)?),
            None => None,
        };
        // From a stage or image: its state and the expanded instruction
        // find the cache first, without mounting anything; when that
        // misses, the files' contents decide (a rebuilt stage whose files
        // did not change still hits).
        let fast_key = match &from_state {
            Some(s) if s.descriptor.is_some() => {
                let mut expanded = Vec::new();
                for src in &spec.sources {
                    expanded.push(if src.starts_with("<<") {
                        src.clone()
                    } else {
                        word(src)?
                    });
                }
                Some(self.key(&[
                    "copy-from-state",
                    &state.id(),
                    &s.id(),
                    &format!("{keyword}\0{dest_written}\0{chown:?}\0{chmod:?}\0{expanded:?}"),
                ]))
            }
            _ => None,
        };
        if let Some(k) = &fast_key
            && let Some(s) = self.cached(k)
        {
            (self.events)(Event::Cached { step });
            return Ok(s);
        }
        let from_root = match &from_state {
            Some(s) if s.descriptor.is_some() => Some(self.rootfs(s, "build-from")?),
            _ => None,
        };
        let empty_dir;
        let exclude = if spec.exclude.is_empty() {
            None
        } else {
            Some(
                crate::ignore::IgnoreRules::parse(&spec.exclude.join("\n"))
                    .map_err(|e| fail(line, format!("--exclude: {e}")))?,
            )
        };
        let tree = match (&from_state, &from_root) {
            (Some(_), Some(r)) => Tree {
                root: &r.dir,
                confine: Confine::InRoot,
                ignore: None,
                exclude: exclude.as_ref(),
            },
            (Some(_), None) => {
                empty_dir = self.stores.dir.join("tmp").join(random_key("empty"));
                let _ = std::fs::create_dir_all(&empty_dir);
                Tree {
                    root: &empty_dir,
                    confine: Confine::InRoot,
                    ignore: None,
                    exclude: None,
                }
            }
            (None, _) => Tree {
                exclude: exclude.as_ref(),
                ..self.context_tree()
            },
        };
        enum Src {
            Files(Vec<Matched>, bool),
            Heredoc(String, String),
            Url(String),
        }
        let mut sources = Vec::new();
        let mut h = Sha256::new();
        h.update(state.id().as_bytes());
        h.update(format!("{keyword}\0{dest_written}\0{chown:?}\0{chmod:?}\0{from:?}\0").as_bytes());
        for src in &spec.sources {
            if let Some(name) = src
                .strip_prefix("<<")
                .map(|n| n.trim_start_matches('-').trim_matches(['"', '\'']))
                && let Some(doc) = spec.heredocs.iter().find(|d| d.name == name)
            {
                let content = if doc.expand {
                    word(&doc.content)?
                } else {
                    doc.content.clone()
                };
                h.update(format!("heredoc\0{name}\0{content}\0").as_bytes());
                sources.push(Src::Heredoc(name.to_owned(), content));
                continue;
            }
            let src = word(src)?;
            if spec.add && (src.starts_with("http://") || src.starts_with("https://")) {
                h.update(format!("url\0{src}\0{:?}\0", spec.checksum).as_bytes());
                sources.push(Src::Url(src));
                continue;
            }
            if spec.add && src.starts_with("git@") {
                return Err(fail(
                    line,
                    "ADD of git repositories is not supported by berth yet",
                ));
            }
            let found = tree
                .matches(&src)
                .map_err(|e| fail(line, format!("{keyword} failed: {e}")))?;
            h.update(format!("src\0{src}\0").as_bytes());
            for m in &found {
                h.update(m.rel.as_bytes());
                tree.hash(m, &mut h)
                    .map_err(|e| fail(line, format!("{keyword} failed: read {src}: {e}")))?;
            }
            sources.push(Src::Files(found, has_glob(&src)));
        }
        let key = self.key(&["copy", &format!("{:x}", h.finalize())]);
        let shown = format!(
            "{keyword} {}{} {dest_written} # buildkit",
            from.as_ref()
                .map(|f| format!("--from={f} "))
                .unwrap_or_default(),
            spec.sources.join(" ")
        );
        if let Some(s) = self.cached(&key) {
            if let Some(k) = &fast_key {
                self.remember(k, &s);
            }
            (self.events)(Event::Cached { step });
            return Ok(s);
        }
        // The destination, inside the parent image.
        let c = state.container();
        let workdir = c.working_dir.clone().unwrap_or_else(|| "/".into());
        let dest_abs = if dest_written.starts_with('/') {
            dest_written.clone()
        } else {
            format!("{workdir}/{dest_written}")
        };
        let parent_root = match &state.descriptor {
            Some(_) => Some(self.rootfs(state, "build-view")?),
            None => None,
        };
        let parent_dir = parent_root.as_ref().map(|r| r.dir.clone());
        let dest_rel = resolve_dest(parent_dir.as_deref(), &dest_abs);
        let dest_is_dir = parent_dir
            .as_ref()
            .is_some_and(|r| !dest_rel.is_empty() && r.join(&dest_rel).is_dir())
            || dest_rel.is_empty();
        let count: usize = sources
            .iter()
            .map(|s| match s {
                Src::Files(f, _) => f.len(),
                _ => 1,
            })
            .sum();
        let globbed = sources.iter().any(|s| matches!(s, Src::Files(_, true)));
        let into_dir = dest_written.ends_with('/') || dest_is_dir || count > 1 || globbed;
        if (count > 1 || globbed) && !dest_written.ends_with('/') && !dest_is_dir {
            return Err(fail(
                line,
                format!(
                    "When using {keyword} with more than one source file, the destination must be a directory and end with a /"
                ),
            ));
        }
        let owner = match &chown {
            Some(spec) => Some(owner(parent_dir.as_deref(), spec).map_err(|e| fail(line, e))?),
            None => None,
        };
        let own = Ownership { owner, mode: chmod };
        let target = |name: &str| {
            if into_dir {
                if dest_rel.is_empty() {
                    name.to_owned()
                } else {
                    format!("{dest_rel}/{name}")
                }
            } else {
                dest_rel.clone()
            }
        };
        let downloads = self.stores.dir.join("tmp").join(random_key("add"));
        let layer = self.store_layer(|w| {
            let mut lw = LayerWriter::new(w, parent_dir.clone());
            if into_dir && !dest_rel.is_empty() {
                lw.ensure_dir(&dest_rel, own)?;
            }
            for s in &sources {
                match s {
                    Src::Heredoc(name, content) => {
                        lw.append_bytes(&target(name), content.as_bytes(), own)?
                    }
                    Src::Url(url) => {
                        std::fs::create_dir_all(&downloads)?;
                        let file = downloads.join("download");
                        self.host.fetch(url, &file).map_err(io::Error::other)?;
                        if let Some(sum) = &spec.checksum {
                            let mut h = Sha256::new();
                            io::copy(&mut std::fs::File::open(&file)?, &mut h)?;
                            let got = format!("sha256:{:x}", h.finalize());
                            if &got != sum {
                                return Err(io::Error::other(format!(
                                    "the download of {url} has digest {got}, not the --checksum {sum}"
                                )));
                            }
                        }
                        let name = url
                            .split(['?', '#'])
                            .next()
                            .unwrap_or_default()
                            .rsplit('/')
                            .next()
                            .filter(|n| !n.is_empty())
                            .unwrap_or("download")
                            .to_owned();
                        let m = Matched {
                            rel: String::new(),
                            path: file.clone(),
                            dir: false,
                            name: name.clone(),
                        };
                        let own = Ownership {
                            mode: own.mode.or(Some(0o600)),
                            ..own
                        };
                        lw.copy(&tree, &m, &target(&name), own)?;
                    }
                    Src::Files(found, _) => {
                        for m in found {
                            if m.dir {
                                lw.copy(&tree, m, &dest_rel, own)?;
                            } else if spec.add && is_archive(&m.path)? {
                                let f = std::fs::File::open(&m.path)?;
                                let stream = berth_image::layer::decompress_stream(f)
                                    .map_err(io::Error::other)?;
                                lw.extract(stream, &dest_rel, own)?;
                            } else {
                                lw.copy(&tree, m, &target(&m.name), own)?;
                            }
                        }
                    }
                }
            }
            lw.finish().map(drop)
        });
        let _ = std::fs::remove_dir_all(&downloads);
        let layer = layer.map_err(|e| fail(line, format!("{keyword} failed: {}", e.message)))?;
        drop(parent_root);
        drop(from_root);
        let s = self.commit(state, Some(layer), c, shown, false)?;
        self.remember(&key, &s);
        if let Some(k) = &fast_key {
            self.remember(k, &s);
        }
        Ok(s)
    }
}

/// Whether the file at `path` is a (possibly compressed) tar archive.
fn is_archive(path: &Path) -> io::Result<bool> {
    let f = std::fs::File::open(path)?;
    let Ok(mut stream) = berth_image::layer::decompress_stream(f) else {
        return Ok(false);
    };
    let mut head = vec![0u8; 512];
    let mut n = 0;
    while n < head.len() {
        match stream.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(_) => return Ok(false),
        }
    }
    Ok(crate::context::looks_like_tar(&head[..n]))
}

/// `dest` (absolute) relative to the image root, with the symlinks of the
/// parent image's existing directories followed inside it (so COPY to
/// `/bin/x` lands in `/usr/bin` where `/bin` links there).
pub(super) fn resolve_dest(root: Option<&Path>, dest: &str) -> String {
    let cleaned = clean(dest).unwrap_or_default();
    let Some(root) = root else { return cleaned };
    let Ok(fd) = berth_sys::fs::open_dir_path(root) else {
        return cleaned;
    };
    let parts: Vec<&str> = cleaned.split('/').filter(|p| !p.is_empty()).collect();
    let root_real = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    // The longest existing prefix, resolved; the rest appended as written.
    for k in (1..=parts.len()).rev() {
        let prefix = parts[..k].join("/");
        if let Ok(f) = berth_sys::fs::open_in_root(&fd, Path::new(&prefix), libc::O_PATH, 0)
            && let Ok(real) = std::fs::read_link(format!(
                "/proc/self/fd/{}",
                std::os::fd::AsRawFd::as_raw_fd(&f)
            ))
            && let Ok(inside) = real.strip_prefix(&root_real)
        {
            let mut out = inside.to_string_lossy().into_owned();
            for p in &parts[k..] {
                if !out.is_empty() {
                    out.push('/');
                }
                out.push_str(p);
            }
            return out;
        }
    }
    cleaned
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners() {
        assert_eq!(owner(None, "10:20"), Ok((10, 20)));
        assert_eq!(owner(None, "7"), Ok((7, 7)));
        assert!(owner(None, "www").is_err());
    }

    #[test]
    fn destinations_follow_the_images_links() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("usr/bin")).unwrap();
        std::os::unix::fs::symlink("usr/bin", d.path().join("bin")).unwrap();
        assert_eq!(resolve_dest(Some(d.path()), "/bin/x"), "usr/bin/x");
        assert_eq!(resolve_dest(Some(d.path()), "/new/dir/"), "new/dir");
        assert_eq!(resolve_dest(None, "/a/../b"), "b");
        assert_eq!(resolve_dest(Some(d.path()), "/"), "");
    }
}
