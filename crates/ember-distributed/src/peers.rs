//! Who the other ranks are (host and process id, exchanged once at initialisation) and whether
//! they are still alive. MPI has no timeouts and no failure notification: a rank waiting for a
//! peer that exited would wait forever. While a blocking call waits, the ranks on this host are
//! checked through `/proc`, so a dead local peer is reported by rank within a fraction of a
//! second; a peer on another host can only be detected by the timeout.

use std::path::Path;

/// One rank's process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Peer {
    /// `MPI_Get_processor_name` of its host.
    pub host: String,
    /// Its process id.
    pub pid: u32,
}

/// Every rank's process, indexed by rank.
#[derive(Clone, Debug, Default)]
pub(crate) struct Peers {
    me: usize,
    all: Vec<Peer>,
}

// Used by the transports (`mpi/`), which the default build leaves out.
#[cfg_attr(not(feature = "mpi"), allow(dead_code))]
impl Peers {
    pub(crate) fn new(me: usize, all: Vec<Peer>) -> Peers {
        Peers { me, all }
    }

    /// The first rank (other than this one) on this host whose process has exited, with its
    /// pid and host.
    pub(crate) fn first_dead(&self) -> Option<(usize, String)> {
        let my_host = &self.all.get(self.me)?.host;
        self.all.iter().enumerate().find_map(|(rank, p)| {
            (rank != self.me && &p.host == my_host && !process_alive(p.pid))
                .then(|| (rank, format!("pid {} on {}", p.pid, p.host)))
        })
    }

    /// The ranks running on other hosts, whose death only the timeout can reveal.
    pub(crate) fn remote(&self) -> Vec<usize> {
        let Some(me) = self.all.get(self.me) else {
            return Vec::new();
        };
        (0..self.all.len())
            .filter(|&r| self.all[r].host != me.host)
            .collect()
    }

    /// A one-line description of rank `r`'s process.
    pub(crate) fn describe(&self, r: usize) -> String {
        match self.all.get(r) {
            Some(p) => format!("pid {} on {}", p.pid, p.host),
            None => "unknown process".into(),
        }
    }
}

/// True while process `pid` exists and has not exited (a zombie, exited but not yet reaped by
/// its parent, counts as dead).
#[cfg_attr(not(feature = "mpi"), allow(dead_code))]
pub(crate) fn process_alive(pid: u32) -> bool {
    let stat = Path::new("/proc").join(pid.to_string()).join("stat");
    match std::fs::read_to_string(stat) {
        // The state follows the parenthesised command name, which may itself hold spaces.
        Ok(s) => match s
            .rfind(')')
            .and_then(|i| s[i + 1..].split_whitespace().next())
        {
            Some(state) => state != "Z" && state != "X",
            None => true,
        },
        // No /proc (not Linux): assume alive; the timeout still applies.
        Err(_) => !Path::new("/proc/self").exists(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_reaped_child_is_not() {
        assert!(process_alive(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!process_alive(pid));
    }

    #[test]
    fn a_zombie_counts_as_dead() {
        let child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        // Not waited for: once it has exited it is a zombie until reaped.
        let start = std::time::Instant::now();
        while process_alive(pid) && start.elapsed().as_secs() < 10 {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(!process_alive(pid));
        drop(child);
    }

    #[test]
    fn first_dead_finds_local_peers_only() {
        let mut dead = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = dead.id();
        dead.wait().unwrap();
        let me = Peer {
            host: "a".into(),
            pid: std::process::id(),
        };
        let peers = Peers::new(
            0,
            vec![
                me.clone(),
                Peer {
                    host: "b".into(),
                    pid: dead_pid,
                },
                Peer {
                    host: "a".into(),
                    pid: dead_pid,
                },
            ],
        );
        let (rank, detail) = peers.first_dead().unwrap();
        assert_eq!(rank, 2, "rank 1 is on another host and cannot be checked");
        assert!(detail.contains(&dead_pid.to_string()));
        assert_eq!(peers.remote(), vec![1]);
        assert!(Peers::new(0, vec![me.clone(), me]).first_dead().is_none());
    }
}
