//! The conditions a run was taken under, printed with every result: a
//! benchmark figure without its machine, load and build is not comparable
//! with anything.

use serde::Serialize;

/// Where and when a run happened.
#[derive(Debug, Clone, Serialize)]
pub struct Environment {
    /// UTC date and time.
    pub date: String,
    /// CPU model.
    pub cpu: String,
    /// CPUs available to this process.
    pub cpus: usize,
    /// Total memory.
    pub memory: String,
    /// 1/5/15-minute load averages at the start.
    pub load_before: String,
    /// How this benchmark binary was built.
    pub profile: &'static str,
    /// Kernel.
    pub kernel: String,
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The 1/5/15-minute load averages.
pub fn loadavg() -> String {
    read("/proc/loadavg")
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

impl Environment {
    /// Reads the current environment.
    pub fn read() -> Self {
        let cpuinfo = read("/proc/cpuinfo");
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            .unwrap_or_default();
        let memory = read("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map(|kib| format!("{:.1} GiB", kib as f64 / 1024.0 / 1024.0))
            .unwrap_or_default();
        let date = std::process::Command::new("date")
            .args(["-u", "+%Y-%m-%d %H:%M UTC"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default();
        Environment {
            date,
            cpu,
            cpus: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            memory,
            load_before: loadavg(),
            profile: if cfg!(debug_assertions) {
                "debug (numbers not representative: build with --release)"
            } else {
                "release"
            },
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
        }
    }

    /// One line for the top of a report.
    pub fn render(&self) -> String {
        format!(
            "{} | {} x {} | {} | load {} | retalk-bench {} build | Linux {}\n",
            self.date,
            self.cpus,
            self.cpu,
            self.memory,
            self.load_before,
            self.profile,
            self.kernel
        )
    }
}
