//! Which blobs images still need, and removing the rest.

use std::collections::HashSet;

use berth_model::Digest;

use crate::content::{ContentError, ContentStore};
use crate::manifest::{Descriptor, Manifest};

/// Every blob reachable from `roots`: the manifests and indexes themselves,
/// the children of indexes that are stored, and the config and layers of
/// every image manifest.
pub fn reachable<'a>(
    content: &ContentStore,
    roots: impl IntoIterator<Item = &'a Descriptor>,
) -> Result<HashSet<Digest>, ContentError> {
    let mut seen = HashSet::new();
    let mut queue: Vec<Descriptor> = roots.into_iter().cloned().collect();
    while let Some(d) = queue.pop() {
        if !seen.insert(d.digest.clone()) {
            continue;
        }
        if !crate::manifest::media_types::is_image_manifest(&d.media_type)
            && !crate::manifest::media_types::is_index(&d.media_type)
        {
            continue;
        }
        let bytes = match content.read_document(&d.digest) {
            Ok(bytes) => bytes,
            // An index entry for a platform never pulled, or a document too
            // large to be one: nothing below it to keep.
            Err(ContentError::NotFound { .. } | ContentError::TooLarge { .. }) => continue,
            Err(e) => return Err(e),
        };
        match Manifest::from_slice(&bytes, Some(&d.media_type)) {
            Ok(Manifest::Image(m)) => {
                seen.insert(m.config.digest.clone());
                seen.extend(m.layers.iter().map(|l| l.digest.clone()));
            }
            Ok(Manifest::Index(i)) => queue.extend(i.manifests.iter().cloned()),
            Err(_) => {}
        }
    }
    Ok(seen)
}

/// Removes the blobs reachable from `removed` that `kept` does not reach;
/// returns their digests.
pub fn remove_unreachable<'a>(
    content: &ContentStore,
    removed: impl IntoIterator<Item = &'a Descriptor>,
    kept: impl IntoIterator<Item = &'a Descriptor>,
) -> Result<Vec<Digest>, ContentError> {
    let keep = reachable(content, kept)?;
    let mut gone: Vec<Digest> = reachable(content, removed)?
        .into_iter()
        .filter(|d| !keep.contains(d))
        .collect();
    gone.sort();
    for digest in &gone {
        match content.delete(digest) {
            Ok(()) | Err(ContentError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(gone)
}
