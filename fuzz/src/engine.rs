//! Parser-fuzzer engine: the mutation loop.
//!
//! The mutation loop: corpus replay, deterministic mutations, panic and hang capture.

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use crate::{corpus_dir, crash_dir, Target};

/// An input running longer than this is a hang (the parsers are linear in their input).
pub const HANG_LIMIT: Duration = Duration::from_secs(5);
/// Largest input the mutator produces.
const MAX_INPUT: usize = 64 * 1024;

thread_local! {
    static LAST_PANIC: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Installs (once) a panic hook that records the message instead of printing it, so a
/// campaign's output stays readable; the message is reported with the saved input.
fn quiet_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let text = info.to_string();
            LAST_PANIC.with(|p| *p.borrow_mut() = text);
        }))
    });
}

/// Runs one input; `Err(panic message)` if the target panicked.
pub fn run_one(target: &Target, input: &[u8]) -> Result<(), String> {
    quiet_panics();
    catch_unwind(AssertUnwindSafe(|| (target.run)(input)))
        .map_err(|_| LAST_PANIC.with(|p| std::mem::take(&mut *p.borrow_mut())))
}

/// The corpus files of `target`, sorted by name.
pub fn corpus(target: &Target) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir(target.name))
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    files.sort();
    files.into_iter().map(|p| (p.clone(), std::fs::read(&p).unwrap_or_default())).collect()
}

/// Runs every corpus file once; the first failure as `(file, message)`.
pub fn replay_corpus(target: &Target) -> Result<usize, (PathBuf, String)> {
    let files = corpus(target);
    for (path, bytes) in &files {
        run_one(target, bytes).map_err(|e| (path.clone(), e))?;
    }
    Ok(files.len())
}

/// What a campaign did.
#[derive(Clone, Debug)]
pub struct FuzzReport {
    /// Inputs run.
    pub execs: u64,
    /// The first failure: saved input and message.
    pub failure: Option<(PathBuf, String)>,
}

/// xorshift64*: fast and deterministic, so a campaign replays from its seed.
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value; 0 is remapped).
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }
    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// A value below `n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// Integers that sit on the edges parsers get wrong.
const INTERESTING: [u64; 16] = [
    0,
    1,
    7,
    8,
    0x10,
    0x7f,
    0x80,
    0xff,
    0x1000,
    0xffff,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0xffff_ffff_ffff_f000,
    0x7fff_ffff_ffff_ffff,
    u64::MAX,
];

/// Applies 1..=8 random edits to `data` (`other` is a second corpus entry to splice from).
pub fn mutate(rng: &mut Rng, data: &mut Vec<u8>, other: &[u8]) {
    for _ in 0..1 + rng.below(8) {
        match rng.below(9) {
            0 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] ^= 1 << rng.below(8);
            }
            1 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] = rng.next_u64() as u8;
            }
            2 | 3 if data.len() >= 2 => {
                // An interesting integer of 1, 2, 4 or 8 bytes at an aligned offset (where
                // the structures keep their lengths, counts and addresses), maybe +-small.
                let width = 1usize << rng.below(4);
                let slots = data.len() / width;
                if slots == 0 {
                    continue;
                }
                let at = rng.below(slots) * width;
                let delta = rng.below(5) as u64;
                let mut v = INTERESTING[rng.below(INTERESTING.len())];
                v = if rng.next_u64() & 1 == 0 { v.wrapping_add(delta) } else { v.wrapping_sub(delta) };
                data[at..at + width].copy_from_slice(&v.to_le_bytes()[..width]);
            }
            4 if !data.is_empty() => {
                let at = rng.below(data.len());
                data.truncate(at);
            }
            5 if data.len() < MAX_INPUT => {
                let at = rng.below(data.len() + 1);
                let n = 1 + rng.below(32);
                let fill = rng.next_u64() as u8;
                data.splice(at..at, std::iter::repeat_n(fill, n));
            }
            6 if data.len() > 1 => {
                let at = rng.below(data.len());
                let n = 1 + rng.below((data.len() - at).min(64));
                data.drain(at..at + n);
            }
            7 if !other.is_empty() && !data.is_empty() => {
                // Splice: overwrite a piece of `data` with a piece of another input.
                let from = rng.below(other.len());
                let n = 1 + rng.below((other.len() - from).min(256));
                let at = rng.below(data.len());
                let n = n.min(data.len() - at);
                data[at..at + n].copy_from_slice(&other[from..from + n]);
            }
            _ if data.len() > 4 && data.len() < MAX_INPUT => {
                // Duplicate a chunk (repeated records: more entries, tags, scopes).
                let from = rng.below(data.len());
                let n = 1 + rng.below((data.len() - from).min(128));
                let chunk: Vec<u8> = data[from..from + n].to_vec();
                let at = rng.below(data.len());
                data.splice(at..at, chunk);
            }
            _ => data.push(rng.next_u64() as u8),
        }
    }
}

fn save(target: &Target, input: &[u8]) -> PathBuf {
    let dir = crash_dir(target.name);
    let _ = std::fs::create_dir_all(&dir);
    // FNV-1a names the file after its content.
    let hash = input.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    let path = dir.join(format!("crash-{hash:016x}"));
    let _ = std::fs::write(&path, input);
    path
}

/// Fuzzes `target` for `time` from `seed`; stops at the first failure. A hang (one
/// input longer than [`HANG_LIMIT`]) saves the input and exits the process with status
/// 70, since the stuck thread cannot be stopped.
pub fn fuzz(target: &'static Target, seed: u64, time: Duration) -> FuzzReport {
    let mut pool: Vec<Vec<u8>> = corpus(target).into_iter().map(|(_, b)| b).collect();
    if pool.is_empty() {
        pool.push(Vec::new());
    }
    let mut rng = Rng::new(seed);
    let current = Arc::new(Mutex::new(Vec::new()));
    let execs = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let (current, execs, done) = (current.clone(), execs.clone(), done.clone());
        std::thread::spawn(move || {
            let (mut seen, mut since) = (u64::MAX, Instant::now());
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                let now = execs.load(Ordering::Relaxed);
                if now != seen {
                    (seen, since) = (now, Instant::now());
                } else if since.elapsed() > HANG_LIMIT {
                    let input = current.lock().map(|c| c.clone()).unwrap_or_default();
                    let path = save(target, &input);
                    eprintln!("fuzz {}: HANG (> {HANG_LIMIT:?}) on {}", target.name, path.display());
                    std::process::exit(70);
                }
            }
        })
    };
    let start = Instant::now();
    let mut failure = None;
    while start.elapsed() < time {
        let base = rng.below(pool.len());
        let other = rng.below(pool.len());
        let mut input = pool[base].clone();
        mutate(&mut rng, &mut input, &pool[other].clone());
        if let Ok(mut c) = current.lock() {
            c.clone_from(&input);
        }
        let result = run_one(target, &input);
        execs.fetch_add(1, Ordering::Relaxed);
        if let Err(message) = result {
            failure = Some((save(target, &input), message));
            break;
        }
        // Keep a few mutants around so edits accumulate (no coverage to pick them by).
        if rng.below(64) == 0 && pool.len() < 256 {
            pool.push(input);
        }
    }
    done.store(true, Ordering::Relaxed);
    let _ = watchdog.join();
    FuzzReport { execs: execs.load(Ordering::Relaxed), failure }
}
