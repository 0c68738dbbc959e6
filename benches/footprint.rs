//! Footprint (issue 4, target 6): heap bytes and fds per supervised child
//! (a counting global allocator; /proc/self/fd), resident memory and threads
//! per child, against the baselines; the release binary's size; the
//! library's runtime dependency count.
//!
//! `cargo bench --bench footprint`. Environment: `PIDREAP_BENCH_FOOTPRINT_N`
//! (children per supervisor, default 1000).
//!
//! The dependency count is that of
//! `cargo tree -e normal,no-proc-macro --prefix none --no-default-features`
//! (unique crates, the root excluded; also with proc-macros, `-e normal`),
//! which the bench runs itself.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use common::*;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator and only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as ours.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as ours.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as ours.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

#[derive(Debug, Clone, Copy)]
struct Snap {
    heap: isize,
    fds: usize,
    rss: u64,
    threads: u64,
}

fn snap() -> Snap {
    Snap {
        heap: LIVE.load(Ordering::Relaxed),
        fds: open_fds(),
        rss: rss_bytes(),
        threads: status_field("/proc/self/status", "Threads:"),
    }
}

struct PerChild {
    name: &'static str,
    heap: f64,
    fds: f64,
    rss: f64,
    threads: f64,
}

/// Measures the footprint of `n` children: `setup` makes the supervisor
/// (not counted), `add` supervises one more child, `teardown` ends it all.
fn per_child<S>(
    name: &'static str,
    n: usize,
    setup: impl FnOnce() -> S,
    mut add: impl FnMut(&mut S),
    teardown: impl FnOnce(S),
) -> PerChild {
    let mut s = setup();
    // A first child, so that one-time costs (lazy initialisations, the
    // first table allocations) are not spread over the others.
    add(&mut s);
    let before = snap();
    for _ in 0..n {
        add(&mut s);
    }
    // Let children finish exec'ing before the RSS is read.
    std::thread::sleep(Duration::from_millis(200));
    let after = snap();
    teardown(s);
    let k = n as f64;
    PerChild {
        name,
        heap: (after.heap - before.heap) as f64 / k,
        fds: (after.fds as f64 - before.fds as f64) / k,
        rss: (after.rss as f64 - before.rss as f64) / k,
        threads: (after.threads as f64 - before.threads as f64) / k,
    }
}

fn main() {
    let n = env_usize("PIDREAP_BENCH_FOOTPRINT_N", 1000);
    if !ensure_fds(2 * n as u64 + 512) {
        return;
    }
    banner("footprint");
    let results = vec![
        per_child(
            "pidreap",
            n,
            || pidreap::Reaper::new().expect("reaper"),
            |r| {
                r.spawn(&pidreap_sleeper()).expect("spawn");
            },
            |mut r| pidreap_kill_all(&mut r, Duration::from_secs(30)),
        ),
        per_child(
            "pidreap + a CancelToken per child",
            n,
            || pidreap::Reaper::new().expect("reaper"),
            |r| {
                let c = r.spawn(&pidreap_sleeper()).expect("spawn");
                std::mem::forget(r.cancel_token(c.id()).expect("token"));
            },
            |mut r| pidreap_kill_all(&mut r, Duration::from_secs(30)),
        ),
        per_child(
            "raw pidfd+epoll loop",
            n,
            raw_loop,
            |lp| {
                lp.spawn_sleeper().expect("spawn");
            },
            |mut lp| lp.kill_all(Duration::from_secs(30)),
        ),
        per_child(
            "tokio::process (current-thread)",
            n,
            || (tokio_rt(), Vec::new()),
            |(rt, v): &mut (tokio::runtime::Runtime, Vec<tokio::process::Child>)| {
                let _g = rt.enter();
                v.push(
                    tokio::process::Command::new(SLEEP)
                        .arg(SLEEP_SECS)
                        .kill_on_drop(true)
                        .spawn()
                        .expect("spawn"),
                );
            },
            |(rt, mut v)| tokio_kill_all(&rt, &mut v),
        ),
        per_child(
            "std thread-per-child (64 KiB stacks)",
            n,
            Vec::new,
            |v: &mut Vec<(u32, std::thread::JoinHandle<()>)>| {
                let mut child = std::process::Command::new(SLEEP)
                    .arg(SLEEP_SECS)
                    .spawn()
                    .expect("spawn");
                let pid = child.id();
                let h = std::thread::Builder::new()
                    .stack_size(64 << 10)
                    .spawn(move || {
                        let _ = child.wait();
                    })
                    .expect("thread");
                v.push((pid, h));
            },
            |v| {
                for (pid, _) in &v {
                    let _ = rustix::process::kill_process(
                        rustix::process::Pid::from_raw(*pid as i32).expect("pid"),
                        rustix::process::Signal::KILL,
                    );
                }
                for (_, h) in v {
                    let _ = h.join();
                }
            },
        ),
    ];
    println!(
        "{n} live children (`{SLEEP} {SLEEP_SECS}`) per supervisor; per child, after a first one:"
    );
    let widths = [38, 12, 10, 14, 10];
    row(
        &["supervisor", "heap B", "fds", "parent RSS B", "threads"].map(String::from),
        &widths,
    );
    for r in &results {
        row(
            &[
                r.name.to_string(),
                format!("{:.0}", r.heap),
                format!("{:.2}", r.fds),
                format!("{:.0}", r.rss),
                format!("{:.2}", r.threads),
            ],
            &widths,
        );
    }
    println!("(parent RSS per child is noisy: allocator arenas and page granularity; the heap column is exact)");

    println!();
    let bin = env!("CARGO_BIN_EXE_pidreap");
    match std::fs::metadata(bin) {
        Ok(m) => {
            let stripped = strip_size(bin);
            println!(
                "binary {bin}: {} bytes ({:.0} KiB){}",
                m.len(),
                m.len() as f64 / 1024.0,
                stripped.map_or(String::new(), |s| format!(
                    ", {s} bytes ({:.0} KiB) stripped (this is the bench profile's build, with debug line tables; \
                     the stripped size is what `cargo build --release` installs, give or take the symbol table)",
                    s as f64 / 1024.0
                ))
            );
        }
        Err(e) => println!("binary {bin}: {e}"),
    }
    for (what, edges, args) in [
        (
            "library, --no-default-features, linked",
            "normal,no-proc-macro",
            &["--no-default-features", "-p", "pidreap"][..],
        ),
        (
            "library, --no-default-features, with proc-macros",
            "normal",
            &["--no-default-features", "-p", "pidreap"][..],
        ),
        (
            "library + binary, default features, linked",
            "normal,no-proc-macro",
            &["-p", "pidreap"][..],
        ),
        // tokio is only a dev-dependency here: `dev` makes cargo tree print it
        // (a registry crate's own dev-dependencies are never resolved).
        (
            "tokio (features process, rt, macros, time), linked",
            "normal,dev,no-proc-macro",
            &["-p", "tokio"][..],
        ),
    ] {
        match dep_count(edges, args) {
            Ok((n, names)) => println!("runtime dependencies, {what}: {n} ({names})"),
            Err(e) => println!("runtime dependencies, {what}: could not run cargo tree ({e})"),
        }
    }
}

/// Size of a stripped copy of `bin`, if `strip` is installed.
fn strip_size(bin: &str) -> Option<u64> {
    let out = std::env::temp_dir().join(format!("pidreap-stripped-{}", std::process::id()));
    let ok = std::process::Command::new("strip")
        .arg("-o")
        .arg(&out)
        .arg(bin)
        .stderr(std::process::Stdio::null())
        .status()
        .ok()?
        .success();
    let size = ok
        .then(|| std::fs::metadata(&out).ok().map(|m| m.len()))
        .flatten();
    let _ = std::fs::remove_file(&out);
    size
}

/// Unique crates in `cargo tree -e EDGES --prefix none ARGS`, root excluded.
fn dep_count(edges: &str, args: &[&str]) -> Result<(usize, String), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["tree", "-e", edges, "--prefix", "none", "--offline"])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr)
            .lines()
            .next()
            .unwrap_or("failed")
            .to_string());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut names: Vec<String> = text
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some(format!("{} {}", it.next()?, it.next()?))
        })
        .collect();
    names.sort();
    names.dedup();
    let root = text
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or("");
    names.retain(|n| n.split_whitespace().next() != Some(root));
    Ok((
        names.len(),
        names
            .iter()
            .map(|n| n.split_whitespace().next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join(", "),
    ))
}
