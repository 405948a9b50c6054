//! COPY and ADD: the plan of what a step copies (resolved before the cache
//! lookup, whose key includes its content hash) and the layer written from
//! it, with parent directories that keep their existing owner and mode.
//! Sources come from the build context or, with `--from`, from an earlier
//! stage's or an image's layers; ADD extracts local tar archives.

use std::collections::BTreeSet;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::state::State;
use super::{Ctx, abs_path, step_err};
use crate::context::{self, Item, SourceFs};
use crate::diff::{Attrs, LayerWriter};
use crate::dockerfile::{Inst, Kind, Src};
use crate::mergedfs::MergedFs;
use crate::{Error, ignore, words};

/// What a COPY/ADD writes.
pub(super) struct CopyPlan {
    items: Vec<Item>,
    archives: Vec<(PathBuf, context::Archive, String)>,
    inline: Vec<(String, String)>,
    /// Directories the items go into (created if missing).
    parents: Vec<String>,
    owner: Option<(u32, u32)>,
    mode: Option<u32>,
    stage_layers: Vec<PathBuf>,
    /// Hash of what is copied, for the cache key.
    pub(super) hash: String,
}

/// Where a COPY/ADD's sources come from and go to.
struct Sources<'a> {
    /// The files copied from: the build context, or the layers `--from`
    /// names.
    fs: &'a dyn SourceFs,
    /// `--from` was given.
    from_other: bool,
    /// ADD: archives from the build context are extracted.
    add: bool,
    /// The destination, relative to the root.
    dest_rel: String,
    /// The destination is a directory: sources go inside it.
    dest_is_dir: bool,
}

impl Ctx<'_> {
    /// Resolves what a COPY/ADD copies, and where.
    pub(super) fn copy_plan(&self, state: &State, inst: &Inst) -> Result<CopyPlan, Error> {
        let Kind::Copy {
            add,
            srcs,
            dest,
            from,
            chown,
            chmod,
        } = &inst.kind
        else {
            unreachable!("COPY or ADD")
        };
        let err = |m: String| step_err(&self.file, inst, m);
        let dest_raw = self.expand(state, inst, dest)?;
        let dest_abs = abs_path(&state.workdir(), &dest_raw);
        let dir_dest = dest_raw.ends_with('/')
            || dest_raw == "."
            || srcs.len() > 1
            || srcs
                .iter()
                .any(|s| matches!(s, Src::Path(p) if ignore::has_wildcards(p)));
        let stage_fs = MergedFs::new(state.layers(self.store));
        let dest_is_dir = dir_dest || stage_fs.lookup(&dest_abs).is_some_and(|f| f.meta.is_dir());
        let owner = match chown {
            Some(c) => {
                let c = self.expand(state, inst, c)?;
                Some(
                    stage_fs
                        .resolve_owner(&c)
                        .map_err(|m| err(format!("--chown={c}: {m}")))?,
                )
            }
            None => None,
        };
        let mode = chmod.as_deref().map(parse_chmod).transpose().map_err(err)?;
        let from_fs = match from {
            Some(f) => Some(self.copy_source_fs(inst, f)?),
            None => None,
        };
        let sources = Sources {
            fs: match &from_fs {
                Some(m) => m,
                None => &self.context,
            },
            from_other: from_fs.is_some(),
            add: *add,
            dest_rel: context::clean_rel(&dest_abs),
            dest_is_dir,
        };
        let mut plan = CopyPlan {
            items: Vec::new(),
            archives: Vec::new(),
            inline: Vec::new(),
            parents: Vec::new(),
            owner,
            mode,
            stage_layers: state.layers(self.store),
            hash: String::new(),
        };
        for src in srcs {
            match src {
                Src::Inline { content, expand } => {
                    if sources.dest_is_dir {
                        return Err(err("a heredoc source needs a file destination".into()));
                    }
                    let content = if *expand {
                        words::word(content, &|k: &str| state.lookup(k), self.escape)
                            .unwrap_or_else(|_| content.clone())
                    } else {
                        content.clone()
                    };
                    plan.inline.push((sources.dest_rel.clone(), content));
                }
                Src::Path(p) => {
                    let p = self.expand(state, inst, p)?;
                    sources.add_path(&p, &mut plan).map_err(err)?;
                }
            }
        }
        plan.hash = plan.content_hash().map_err(err)?;
        plan.parents = plan.parents(&sources.dest_rel, sources.dest_is_dir);
        Ok(plan)
    }

    /// `--from=F`: the layers of an earlier stage, or of an image.
    fn copy_source_fs(&self, inst: &Inst, from: &str) -> Result<MergedFs, Error> {
        let f = words::word(
            from,
            &|k: &str| self.global_args.get(k).cloned().flatten(),
            self.escape,
        )
        .map_err(|m| step_err(&self.file, inst, m))?;
        let layers = match self.stage_of(&f, self.current) {
            Some(dep) => self.done[&dep].layers(self.store),
            None => {
                let img = self.image(&f).map_err(|e| Error::StepSource {
                    file: self.file.clone(),
                    line: inst.line,
                    text: inst.text.clone(),
                    source: Box::new(e),
                })?;
                img.layer_dirs
            }
        };
        Ok(MergedFs::new(layers))
    }
}

/// `--chmod=MODE` (octal).
fn parse_chmod(m: &str) -> Result<u32, String> {
    u32::from_str_radix(m, 8).map_err(|_| format!("--chmod={m}: expected an octal mode like 755"))
}

impl Sources<'_> {
    /// Adds what the source path `p` matches to `plan`.
    fn add_path(&self, p: &str, plan: &mut CopyPlan) -> Result<(), String> {
        let matched = context::resolve(self.fs, p);
        if matched.is_empty() {
            return Err(if self.from_other {
                format!("\"{p}\": not found in the source stage or image")
            } else {
                format!("\"{p}\": not found in the build context (or excluded by .dockerignore)")
            });
        }
        for (rel, entry) in matched {
            let base = rel.rsplit('/').next().unwrap_or(&rel).to_owned();
            if self.add
                && !self.from_other
                && entry.meta.is_file()
                && let Some(kind) = context::sniff_archive(&entry.real)
            {
                plan.archives
                    .push((entry.real.clone(), kind, self.dest_rel.clone()));
                continue;
            }
            let target = if entry.meta.is_dir() {
                self.dest_rel.clone()
            } else if self.dest_is_dir {
                context::join(&self.dest_rel, &base)
            } else {
                self.dest_rel.clone()
            };
            context::expand(self.fs, &rel, &entry, &target, &mut plan.items);
        }
        Ok(())
    }
}

impl CopyPlan {
    /// Hash of the copied files, archives and heredocs.
    fn content_hash(&self) -> Result<String, String> {
        let mut h =
            context::hash_items(&self.items).map_err(|e| format!("cannot read a source: {e}"))?;
        for (real, _, d) in &self.archives {
            let one = context::hash_items(&[Item {
                dest: d.clone(),
                entry: context::Entry {
                    real: real.clone(),
                    meta: std::fs::metadata(real).map_err(|e| e.to_string())?,
                },
            }])
            .map_err(|e| e.to_string())?;
            h.push_str(&one);
        }
        for (d, c) in &self.inline {
            h.push_str(&rstack_images::sha256_digest(
                format!("{d}\0{c}").as_bytes(),
            ));
        }
        Ok(h)
    }

    /// The directories the copied files go into.
    fn parents(&self, dest_rel: &str, dest_is_dir: bool) -> Vec<String> {
        let mut parents: Vec<String> = Vec::new();
        if dest_is_dir && !dest_rel.is_empty() {
            parents.push(dest_rel.to_owned());
        }
        for it in &self.items {
            if let Some((p, _)) = it.dest.rsplit_once('/') {
                parents.push(p.to_owned());
            }
        }
        for (d, _) in &self.inline {
            if let Some((p, _)) = d.rsplit_once('/') {
                parents.push(p.to_owned());
            }
        }
        parents
    }

    /// Writes the layer: parent dirs, files, heredocs, extracted archives.
    pub(super) fn write(&self, w: &mut LayerWriter) -> io::Result<()> {
        let fs = MergedFs::new(self.stage_layers.clone());
        let item_dests: BTreeSet<&str> = self.items.iter().map(|i| i.dest.as_str()).collect();
        let parents: Vec<String> = self
            .parents
            .iter()
            .filter(|p| !item_dests.contains(p.as_str()))
            .cloned()
            .collect();
        write_parents(w, &fs, &parents, self.owner.unwrap_or((0, 0)), true)?;
        let attrs = Attrs {
            owner: Some(self.owner.unwrap_or((0, 0))),
            mode: self.mode,
        };
        for it in &self.items {
            w.append(&it.entry.real, &it.dest, attrs)?;
        }
        for (dest, content) in &self.inline {
            w.append_bytes(
                dest,
                content.as_bytes(),
                self.mode.unwrap_or(0o644),
                self.owner.unwrap_or((0, 0)),
            )?;
        }
        for (path, kind, dest) in &self.archives {
            write_archive(w, path, kind, dest)?;
        }
        Ok(())
    }
}

/// ADD of a local archive: its entries, extracted under `dest`.
fn write_archive(
    w: &mut LayerWriter,
    path: &Path,
    kind: &context::Archive,
    dest: &str,
) -> io::Result<()> {
    let f = io::BufReader::new(std::fs::File::open(path)?);
    let reader: Box<dyn Read> = match kind {
        context::Archive::Tar => Box::new(f),
        context::Archive::Gzip => Box::new(flate2::read::MultiGzDecoder::new(f)),
        context::Archive::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(f)?),
    };
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let name = context::clean_rel(&entry.path()?.to_string_lossy());
        if name.is_empty() {
            continue;
        }
        let full = context::join(dest, &name);
        entry.set_preserve_permissions(true);
        w.append_entry(&mut entry, &full)?;
    }
    Ok(())
}

/// Writes directory entries for `dirs` and all their ancestors, shallow
/// first: existing ones with their current attributes (an upper layer's
/// directory replaces the lower one's owner and mode in the merged view),
/// new ones as 0755 owned by `owner`.
pub(super) fn write_parents(
    w: &mut LayerWriter,
    fs: &MergedFs,
    dirs: &[String],
    owner: (u32, u32),
    include_self: bool,
) -> io::Result<()> {
    let mut all = BTreeSet::new();
    for d in dirs {
        let parts: Vec<&str> = d.split('/').filter(|s| !s.is_empty()).collect();
        let upto = if include_self {
            parts.len()
        } else {
            parts.len().saturating_sub(1)
        };
        for n in 1..=upto {
            all.insert(parts[..n].join("/"));
        }
    }
    let mut sorted: Vec<String> = all.into_iter().collect();
    sorted.sort_by_key(|p| (p.matches('/').count(), p.clone()));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    for d in sorted {
        match fs.lookup(&d) {
            Some(f) if f.meta.is_dir() => w.append_dir(
                &d,
                f.meta.mode() & 0o7777,
                (f.meta.uid(), f.meta.gid()),
                f.meta.mtime().max(0) as u64,
            )?,
            Some(_) => {
                return Err(io::Error::other(format!(
                    "/{d} exists in the image and is not a directory"
                )));
            }
            None => w.append_dir(&d, 0o755, owner, now)?,
        }
    }
    Ok(())
}
