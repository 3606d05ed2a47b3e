//! A FUSE filesystem that forgets what was never synced: the disk a power cut leaves behind, in
//! the spirit of LazyFS.
//!
//! ```text
//!   outpost store ──syscalls──► kernel FUSE ──► PowerCutFs (in this test process)
//!                                                 live:    what processes see now
//!                                                 durable: what a disk would hold after a cut
//! ```
//!
//! The live tree is kept in memory. Beside it the filesystem remembers, with POSIX-strict
//! semantics, what is durable:
//! - a file's contents (and size) as of its last `fsync`/`fdatasync`, plus the writes since
//!   then, in order;
//! - a directory's entries (name → inode) as of its last `fsync` on the directory, plus the
//!   creates, links, renames and unlinks since then. A file's own fsync does not make its name
//!   durable, nor does a directory's fsync make its files' contents durable;
//! - everything loaded at mount is durable.
//!
//! [`Disk::cut_after`] arms a power cut at the N-th mutating operation (write, truncate, create,
//! mkdir, link, unlink, rename, fsync): that operation and every later one fails with EIO, so
//! nothing a process does after the cut can reach the "disk". [`Disk::power_off`] then unmounts
//! and writes the durable state into a fresh directory, walking from the root's durable entries:
//! an entry never synced in its parent is gone, a file holds its last synced contents. With
//! [`Unsynced::TornPrefix`] a random prefix of the unsynced writes of each file and of the
//! unsynced entry changes of each directory survives as well (a disk that got part of the
//! way), the last write possibly torn mid-way.
//!
//! What it does not model: a disk's volatile write cache or firmware that lies about flushes,
//! reordering of unsynced writes (only prefixes survive), and filesystems (ext4 data=ordered,
//! XFS) that in practice persist more than POSIX promises.

use std::collections::{BTreeMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::io;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use fuser::{
    BackgroundSession, Config, Errno, FileAttr, FileHandle, FileType, FopenFlags, Generation,
    INodeNo, KernelConfig, LockOwner, MountOption, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate,
    ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request,
    TimeOrNow, WriteFlags,
};
use rand::Rng;
use rand::rngs::StdRng;

/// How long the kernel may cache names and attributes: the filesystem is only changed through
/// the kernel, so any value is correct; a second saves lookups.
const TTL: Duration = Duration::from_secs(1);

/// Why FUSE cannot be mounted on this machine (the test then skips), or None.
pub fn unavailable() -> Option<String> {
    if !Path::new("/dev/fuse").exists() {
        return Some("no /dev/fuse".into());
    }
    let root = nix::unistd::geteuid().is_root();
    let helper = [
        "/bin/fusermount3",
        "/usr/bin/fusermount3",
        "/bin/fusermount",
    ]
    .iter()
    .any(|p| Path::new(p).exists());
    if !root && !helper {
        return Some("not root and no fusermount3 (Debian package fuse3)".into());
    }
    None
}

/// What survives of the changes made since a file's or a directory's last sync.
#[derive(Debug, Clone, Copy)]
pub enum Unsynced {
    /// Nothing: the strict POSIX reading.
    Lost,
    /// A random prefix (drawn from this seed), the last write possibly torn mid-way.
    TornPrefix(u64),
}

/// A mounted [`PowerCutFs`].
pub struct Disk {
    session: Option<BackgroundSession>,
    shared: Arc<Shared>,
}

impl Disk {
    /// Mounts at `mountpoint` a filesystem whose initial, durable contents are a copy of the
    /// tree under `from`. PermissionDenied when this process may not mount FUSE.
    pub fn mount(from: &Path, mountpoint: &Path) -> io::Result<Disk> {
        let mut state = State::default();
        state.load(ROOT, from)?;
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            cut: Condvar::new(),
        });
        let fs = PowerCutFs {
            shared: Arc::clone(&shared),
        };
        let mut config = Config::default();
        config.mount_options = vec![MountOption::FSName("powercut".into())];
        config.n_threads = Some(2);
        let session = fuser::spawn_mount(fs, mountpoint, &config)?;
        Ok(Disk {
            session: Some(session),
            shared,
        })
    }

    /// Mutating operations served so far.
    pub fn ops(&self) -> u64 {
        self.shared.lock().ops
    }

    /// Cuts the power at the `n`-th mutating operation from now (that one fails already).
    pub fn cut_after(&self, n: u64) {
        let mut s = self.shared.lock();
        s.cut_at = Some(s.ops + n.max(1));
    }

    /// Cuts the power now (if it is not off yet).
    pub fn cut_now(&self) {
        self.shared.lock().off = true;
        self.shared.cut.notify_all();
    }

    /// Waits until the armed cut happened; false if it did not within `timeout`.
    pub fn wait_for_cut(&self, timeout: Duration) -> bool {
        let s = self.shared.lock();
        let (s, _) = self
            .shared
            .cut
            .wait_timeout_while(s, timeout, |s| !s.off)
            .unwrap_or_else(|e| e.into_inner());
        s.off
    }

    /// Cuts the power (if not yet), unmounts, and writes what the disk would hold into `to`
    /// (created). Every process using the mount must be gone, or the unmount fails.
    pub fn power_off(mut self, to: &Path, unsynced: Unsynced) -> io::Result<Survived> {
        self.cut_now();
        if let Some(session) = self.session.take() {
            session.umount_and_join()?;
        }
        let state = self.shared.lock();
        let mut out = Materialise {
            state: &state,
            rng: match unsynced {
                Unsynced::Lost => None,
                Unsynced::TornPrefix(seed) => Some(rand::SeedableRng::seed_from_u64(seed)),
            },
            seen: HashSet::new(),
            survived: Survived::default(),
        };
        std::fs::create_dir_all(to)?;
        out.dir(ROOT, to)?;
        Ok(out.survived)
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        self.cut_now();
        if let Some(session) = self.session.take() {
            let _ = session.umount_and_join();
        }
    }
}

/// What a power cut kept and lost, for the test's report.
#[derive(Debug, Default, Clone, Copy)]
pub struct Survived {
    pub files: usize,
    /// Files whose unsynced writes were dropped or torn.
    pub files_rolled_back: usize,
    /// Directory entries present live but not on the disk.
    pub entries_lost: usize,
}

const ROOT: u64 = 1;

struct Shared {
    state: Mutex<State>,
    cut: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Default)]
struct State {
    /// Inode `n` is `nodes[n - 1]`. Inodes are never freed: a durable entry may still name a
    /// file that is unlinked live.
    nodes: Vec<Node>,
    ops: u64,
    cut_at: Option<u64>,
    off: bool,
}

struct Node {
    perm: u16,
    mtime: SystemTime,
    /// Live names that point here (files); 2 for directories.
    nlink: u32,
    body: Body,
}

enum Body {
    File {
        live: Vec<u8>,
        durable: Vec<u8>,
        unsynced: Vec<Write>,
    },
    Dir {
        live: BTreeMap<OsString, u64>,
        durable: BTreeMap<OsString, u64>,
        unsynced: Vec<Link>,
    },
}

/// A change to a file's bytes.
enum Write {
    At(u64, Vec<u8>),
    Truncate(u64),
}

impl Write {
    fn apply(&self, data: &mut Vec<u8>) {
        match self {
            Write::At(offset, bytes) => {
                let start = *offset as usize;
                let end = start + bytes.len();
                if data.len() < end {
                    data.resize(end, 0);
                }
                data[start..end].copy_from_slice(bytes);
            }
            Write::Truncate(len) => data.resize(*len as usize, 0),
        }
    }
}

/// A change to a directory's entries.
enum Link {
    Add(OsString, u64),
    Remove(OsString),
    /// Within one directory, atomic.
    Rename(OsString, OsString),
}

impl Link {
    fn apply(&self, entries: &mut BTreeMap<OsString, u64>) {
        match self {
            Link::Add(name, ino) => {
                entries.insert(name.clone(), *ino);
            }
            Link::Remove(name) => {
                entries.remove(name);
            }
            Link::Rename(from, to) => {
                if let Some(ino) = entries.remove(from) {
                    entries.insert(to.clone(), ino);
                }
            }
        }
    }
}

type Res<T> = Result<T, Errno>;

impl State {
    fn node(&self, ino: u64) -> Res<&Node> {
        self.nodes
            .get((ino as usize).wrapping_sub(1))
            .ok_or(Errno::ENOENT)
    }

    fn node_mut(&mut self, ino: u64) -> Res<&mut Node> {
        self.nodes
            .get_mut((ino as usize).wrapping_sub(1))
            .ok_or(Errno::ENOENT)
    }

    fn entries(&self, dir: u64) -> Res<&BTreeMap<OsString, u64>> {
        match &self.node(dir)?.body {
            Body::Dir { live, .. } => Ok(live),
            Body::File { .. } => Err(Errno::ENOTDIR),
        }
    }

    fn lookup(&self, dir: u64, name: &OsStr) -> Res<u64> {
        self.entries(dir)?.get(name).copied().ok_or(Errno::ENOENT)
    }

    /// Every operation passes here first: EIO once the power is off.
    fn alive(&self) -> Res<()> {
        if self.off { Err(Errno::EIO) } else { Ok(()) }
    }

    /// A mutating operation: counts towards the armed cut, which it may trigger.
    fn mutate(&mut self, cut: &Condvar) -> Res<()> {
        self.alive()?;
        self.ops += 1;
        if self.cut_at.is_some_and(|at| self.ops >= at) {
            self.off = true;
            cut.notify_all();
            return Err(Errno::EIO);
        }
        Ok(())
    }

    fn new_node(&mut self, perm: u16, body: Body) -> u64 {
        self.nodes.push(Node {
            perm,
            mtime: SystemTime::now(),
            nlink: if matches!(body, Body::Dir { .. }) {
                2
            } else {
                0
            },
            body,
        });
        self.nodes.len() as u64
    }

    /// Adds `name → ino` to `dir` (live, and to its unsynced changes), replacing an entry.
    fn link(&mut self, dir: u64, name: &OsStr, ino: u64) -> Res<()> {
        let replaced = match &mut self.node_mut(dir)?.body {
            Body::Dir { live, unsynced, .. } => {
                unsynced.push(Link::Add(name.to_owned(), ino));
                live.insert(name.to_owned(), ino)
            }
            Body::File { .. } => return Err(Errno::ENOTDIR),
        };
        self.node_mut(ino)?.nlink += u32::from(matches!(self.node(ino)?.body, Body::File { .. }));
        if let Some(old) = replaced {
            self.dropped_link(old)?;
        }
        Ok(())
    }

    fn unlink(&mut self, dir: u64, name: &OsStr) -> Res<u64> {
        let ino = match &mut self.node_mut(dir)?.body {
            Body::Dir { live, unsynced, .. } => {
                let ino = live.remove(name).ok_or(Errno::ENOENT)?;
                unsynced.push(Link::Remove(name.to_owned()));
                ino
            }
            Body::File { .. } => return Err(Errno::ENOTDIR),
        };
        self.dropped_link(ino)?;
        Ok(ino)
    }

    fn dropped_link(&mut self, ino: u64) -> Res<()> {
        let node = self.node_mut(ino)?;
        if matches!(node.body, Body::File { .. }) {
            node.nlink = node.nlink.saturating_sub(1);
        }
        Ok(())
    }

    fn create(&mut self, dir: u64, name: &OsStr, perm: u16, body: Body) -> Res<u64> {
        if self.lookup(dir, name).is_ok() {
            return Err(Errno::EEXIST);
        }
        let ino = self.new_node(perm, body);
        self.link(dir, name, ino)?;
        Ok(ino)
    }

    fn write(&mut self, ino: u64, change: Write) -> Res<()> {
        let node = self.node_mut(ino)?;
        node.mtime = SystemTime::now();
        match &mut node.body {
            Body::File { live, unsynced, .. } => {
                change.apply(live);
                unsynced.push(change);
                Ok(())
            }
            Body::Dir { .. } => Err(Errno::EISDIR),
        }
    }

    /// fsync/fdatasync of a file, fsync of a directory: its pending changes become durable.
    fn sync(&mut self, ino: u64) -> Res<()> {
        match &mut self.node_mut(ino)?.body {
            Body::File {
                durable, unsynced, ..
            } => unsynced.drain(..).for_each(|w| w.apply(durable)),
            Body::Dir {
                live,
                durable,
                unsynced,
            } => {
                durable.clone_from(live);
                unsynced.clear();
            }
        }
        Ok(())
    }

    fn attr(&self, ino: u64) -> Res<FileAttr> {
        let node = self.node(ino)?;
        let (kind, size) = match &node.body {
            Body::File { live, .. } => (FileType::RegularFile, live.len() as u64),
            Body::Dir { live, .. } => (FileType::Directory, live.len() as u64),
        };
        Ok(FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: node.mtime,
            mtime: node.mtime,
            ctime: node.mtime,
            crtime: node.mtime,
            kind,
            perm: node.perm,
            nlink: node.nlink,
            uid: 0,
            gid: 0,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        })
    }

    /// Loads the tree under `from` into directory `dir`, as durable.
    fn load(&mut self, dir: u64, from: &Path) -> io::Result<()> {
        if self.nodes.is_empty() {
            self.new_node(0o755, empty_dir());
        }
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            let name = entry.file_name();
            let ino = if entry.file_type()?.is_dir() {
                let ino = self.new_node(0o755, empty_dir());
                self.load(ino, &entry.path())?;
                ino
            } else {
                let data = std::fs::read(entry.path())?;
                self.new_node(
                    0o644,
                    Body::File {
                        live: data.clone(),
                        durable: data,
                        unsynced: Vec::new(),
                    },
                )
            };
            self.link(dir, &name, ino).map_err(io_error)?;
        }
        self.sync(dir).map_err(io_error)?;
        Ok(())
    }
}

fn io_error(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(i32::from(e))
}

fn empty_dir() -> Body {
    Body::Dir {
        live: BTreeMap::new(),
        durable: BTreeMap::new(),
        unsynced: Vec::new(),
    }
}

/// Writes the durable state out as a directory tree.
struct Materialise<'a> {
    state: &'a State,
    rng: Option<StdRng>,
    /// Directories already written (a directory renamed without syncing both parents could be
    /// durable in two places; a disk would hold it once).
    seen: HashSet<u64>,
    survived: Survived,
}

impl Materialise<'_> {
    fn dir(&mut self, ino: u64, to: &Path) -> io::Result<()> {
        let state = self.state;
        let Ok(Body::Dir {
            live,
            durable,
            unsynced,
        }) = state.node(ino).map(|n| &n.body)
        else {
            return Ok(());
        };
        let mut entries = durable.clone();
        let kept = self.prefix(unsynced.len());
        unsynced[..kept].iter().for_each(|l| l.apply(&mut entries));
        self.survived.entries_lost += live.keys().filter(|n| !entries.contains_key(*n)).count();
        for (name, child) in &entries {
            let path = to.join(name);
            match &state.node(*child).map_err(io_error)?.body {
                Body::Dir { .. } => {
                    if self.seen.insert(*child) {
                        std::fs::create_dir(&path)?;
                        self.dir(*child, &path)?;
                    }
                }
                Body::File {
                    durable, unsynced, ..
                } => {
                    let mut data = durable.clone();
                    let kept = self.torn(unsynced, &mut data);
                    self.survived.files += 1;
                    self.survived.files_rolled_back += usize::from(!kept);
                    std::fs::write(&path, data)?;
                }
            }
        }
        Ok(())
    }

    /// How many of `n` pending changes survive.
    fn prefix(&mut self, n: usize) -> usize {
        self.rng.as_mut().map_or(0, |r| r.random_range(0..=n))
    }

    /// Applies the surviving prefix of `unsynced` to `data`; true if all of it survived.
    fn torn(&mut self, unsynced: &[Write], data: &mut Vec<u8>) -> bool {
        let kept = self.prefix(unsynced.len());
        unsynced[..kept].iter().for_each(|w| w.apply(data));
        if let (Some(Write::At(offset, bytes)), Some(rng)) = (unsynced.get(kept), &mut self.rng) {
            let part = rng.random_range(0..bytes.len().max(1));
            Write::At(*offset, bytes[..part].to_vec()).apply(data);
        }
        kept == unsynced.len()
    }
}

/// The filesystem the kernel talks to; all state behind one lock.
struct PowerCutFs {
    shared: Arc<Shared>,
}

impl PowerCutFs {
    fn with<T>(&self, f: impl FnOnce(&mut State) -> Res<T>) -> Res<T> {
        let mut state = self.shared.lock();
        state.alive()?;
        f(&mut state)
    }

    /// Runs a mutating operation (it may be the one the power cut falls on).
    fn mutating<T>(&self, f: impl FnOnce(&mut State) -> Res<T>) -> Res<T> {
        let mut state = self.shared.lock();
        state.mutate(&self.shared.cut)?;
        f(&mut state)
    }
}

fn perm(mode: u32, umask: u32) -> u16 {
    (mode & !umask & 0o7777) as u16
}

fn entry(reply: ReplyEntry, attr: Res<FileAttr>) {
    match attr {
        Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
        Err(e) => reply.error(e),
    }
}

fn empty(reply: ReplyEmpty, done: Res<()>) {
    match done {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(e),
    }
}

impl fuser::Filesystem for PowerCutFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> io::Result<()> {
        // Large writes: a multi-MiB blob then costs a few requests, not hundreds.
        let _ = config.set_max_write(1 << 20);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        entry(reply, self.with(|s| s.attr(s.lookup(parent.0, name)?)));
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.with(|s| s.attr(ino.0)) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let done = self.with(|s| {
            if let Some(size) = size {
                s.mutate(&self.shared.cut)?;
                s.write(ino.0, Write::Truncate(size))?;
            }
            if let Some(mode) = mode {
                s.node_mut(ino.0)?.perm = perm(mode, 0);
            }
            s.attr(ino.0)
        });
        match done {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        entry(
            reply,
            self.mutating(|s| {
                let ino = s.create(parent.0, name, perm(mode, umask), empty_dir())?;
                s.attr(ino)
            }),
        );
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        empty(
            reply,
            self.mutating(|s| match s.node(s.lookup(parent.0, name)?)?.body {
                Body::Dir { .. } => Err(Errno::EISDIR),
                Body::File { .. } => s.unlink(parent.0, name).map(drop),
            }),
        );
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        empty(
            reply,
            self.mutating(|s| {
                if !s.entries(s.lookup(parent.0, name)?)?.is_empty() {
                    return Err(Errno::ENOTEMPTY);
                }
                s.unlink(parent.0, name).map(drop)
            }),
        );
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        empty(
            reply,
            self.mutating(|s| {
                if !flags.is_empty() {
                    return Err(Errno::EINVAL);
                }
                let ino = s.lookup(parent.0, name)?;
                if let Ok(target) = s.lookup(newparent.0, newname) {
                    if target == ino {
                        return Ok(());
                    }
                    let is_dir =
                        |n: u64| matches!(s.node(n).map(|n| &n.body), Ok(Body::Dir { .. }));
                    if is_dir(target) && !s.entries(target)?.is_empty() {
                        return Err(Errno::ENOTEMPTY);
                    }
                }
                if parent == newparent {
                    // One directory: atomic on the disk as well.
                    let Body::Dir { live, unsynced, .. } = &mut s.node_mut(parent.0)?.body else {
                        return Err(Errno::ENOTDIR);
                    };
                    live.remove(name);
                    let replaced = live.insert(newname.to_owned(), ino);
                    unsynced.push(Link::Rename(name.to_owned(), newname.to_owned()));
                    if let Some(old) = replaced {
                        s.dropped_link(old)?;
                    }
                    return Ok(());
                }
                // Across directories: each side is durable at its own directory's fsync.
                s.link(newparent.0, newname, ino)?;
                s.unlink(parent.0, name).map(drop)
            }),
        );
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        entry(
            reply,
            self.mutating(|s| {
                if matches!(s.node(ino.0)?.body, Body::Dir { .. }) {
                    return Err(Errno::EPERM);
                }
                if s.lookup(newparent.0, newname).is_ok() {
                    return Err(Errno::EEXIST);
                }
                s.link(newparent.0, newname, ino.0)?;
                s.attr(ino.0)
            }),
        );
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.with(|s| s.node(ino.0).map(drop)) {
            Ok(()) => reply.opened(FileHandle(0), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let file = Body::File {
            live: Vec::new(),
            durable: Vec::new(),
            unsynced: Vec::new(),
        };
        match self.mutating(|s| {
            let ino = s.create(parent.0, name, perm(mode, umask), file)?;
            s.attr(ino)
        }) {
            Ok(attr) => reply.created(
                &TTL,
                &attr,
                Generation(0),
                FileHandle(0),
                FopenFlags::empty(),
            ),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let state = self.shared.lock();
        let data = state.alive().and_then(|()| match &state.node(ino.0)?.body {
            Body::File { live, .. } => {
                let start = (offset as usize).min(live.len());
                let end = (start + size as usize).min(live.len());
                Ok(&live[start..end])
            }
            Body::Dir { .. } => Err(Errno::EISDIR),
        });
        match data {
            Ok(bytes) => reply.data(bytes),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.mutating(|s| s.write(ino.0, Write::At(offset, data.to_vec()))) {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        empty(reply, self.mutating(|s| s.sync(ino.0)));
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let listed = self.with(|s| {
            let mut all = vec![
                (ino.0, FileType::Directory, OsString::from(".")),
                (ino.0, FileType::Directory, OsString::from("..")),
            ];
            for (name, child) in s.entries(ino.0)? {
                let kind = match s.node(*child)?.body {
                    Body::Dir { .. } => FileType::Directory,
                    Body::File { .. } => FileType::RegularFile,
                };
                all.push((*child, kind, name.clone()));
            }
            Ok(all)
        });
        match listed {
            Ok(all) => {
                for (i, (child, kind, name)) in all.into_iter().enumerate().skip(offset as usize) {
                    if reply.add(INodeNo(child), i as u64 + 1, kind, &name) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(e),
        }
    }

    fn fsyncdir(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        // Without this the kernel takes ENOSYS as "nothing to sync" and fsync(dir) succeeds.
        self.fsync(req, ino, fh, datasync, reply);
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        // Plenty of room: the store refuses writes on a disk it sees as full.
        let blocks = 1 << 28;
        reply.statfs(blocks, blocks, blocks, 1 << 20, 1 << 20, 4096, 255, 4096);
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        reply.ok();
    }
}
