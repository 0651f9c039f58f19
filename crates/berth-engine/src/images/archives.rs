//! Saving and loading image archives (`docker save`, `docker load`).

use std::io::{Read, Write};

use berth_image::archive::{self, SaveImage};
use berth_model::ImageRef;

use super::ImageService;

/// What `save` writes for `names`: each image once, under the names asked
/// for (by reference: that name; by ID: every tag of the image).
pub fn save_set(
    images: &ImageService,
    names: &[String],
) -> Result<Vec<SaveImage>, crate::EngineError> {
    let mut out: Vec<SaveImage> = Vec::new();
    for name in names {
        let (refs, target) = images.find(name)?;
        let (manifest, _) = images.resolve(&target)?;
        let asked = ImageRef::parse(name).ok().map(|r| {
            if r.tag().is_none() && r.digest().is_none() {
                r.with_tag("latest").unwrap_or(r)
            } else {
                r
            }
        });
        let names: Vec<ImageRef> = match asked {
            Some(r) if refs.contains(&r) => vec![r],
            _ => refs.into_iter().filter(|r| r.tag().is_some()).collect(),
        };
        match out
            .iter_mut()
            .find(|i| i.manifest.digest == manifest.digest)
        {
            Some(existing) => existing.names.extend(names),
            None => out.push(SaveImage { names, manifest }),
        }
    }
    Ok(out)
}

/// Writes the archive of `names` to `out`.
pub fn save(images: &ImageService, names: &[String], out: impl Write) -> Result<(), String> {
    let set = save_set(images, names)?;
    archive::save(&images.content, &set, out).map_err(|e| e.to_string())
}

/// Loads the archive `input`, unpacks and names its images, and returns
/// Docker's lines (`Loaded image: NAME`, `Loaded image ID: ID`).
pub fn load(images: &ImageService, input: impl Read) -> Result<Vec<String>, String> {
    let loaded = archive::load(&images.content, input).map_err(|e| e.to_string())?;
    let mut lines = Vec::new();
    for image in &loaded {
        images.unpack(&image.target, |_, _| {})?;
        lines.push(match &image.name {
            Some(name) => {
                images
                    .images
                    .put(name, image.target.clone())
                    .map_err(|e| e.to_string())?;
                format!("Loaded image: {}", name.familiar())
            }
            None => {
                let id = images.image_id(&image.target)?;
                // An unnamed image is kept by its digest, as Docker keeps
                // dangling images.
                let dangling = super::untagged(&image.target)?;
                images
                    .images
                    .put(&dangling, image.target.clone())
                    .map_err(|e| e.to_string())?;
                format!("Loaded image ID: {id}")
            }
        });
    }
    Ok(lines)
}
