//! keepalived's notify scripts as the `havipctl watch --exec` command that replaces them.

use crate::words;

/// Where the notify service of deploy/havip-notify.service keeps its cursor.
const CURSOR: &str = "/var/lib/havip-notify/cursor";

/// The notify lines of one vrrp_instance or vrrp_sync_group: each a script line as
/// keepalived would run it.
#[derive(Debug, Default, Clone)]
pub struct Hooks {
    pub master: Option<String>,
    pub backup: Option<String>,
    pub fault: Option<String>,
    pub stop: Option<String>,
    /// `notify`: keepalived appends INSTANCE|GROUP NAME STATE PRIORITY, as watch --exec.
    pub any: Option<String>,
}

impl Hooks {
    pub fn is_empty(&self) -> bool {
        self.master.is_none()
            && self.backup.is_none()
            && self.fault.is_none()
            && self.stop.is_none()
            && self.any.is_none()
    }

    /// The watch command for these `instances` (havip names).
    pub fn command(&self, instances: &[String]) -> String {
        let mut command = format!(
            "havipctl watch --instance {} --cursor-file {CURSOR}",
            words::quote(&instances.join(","))
        );
        let per_state = [
            ("MASTER", &self.master),
            ("BACKUP", &self.backup),
            ("FAULT", &self.fault),
            ("STOP", &self.stop),
        ];
        let only_any = per_state.iter().all(|(_, hook)| hook.is_none());
        if only_any
            && let Some(any) = &self.any
            && let Ok(split) = words::split(any)
        {
            // watch --exec appends the same four arguments as keepalived's notify.
            command.push_str(&format!(" --exec {}", words::quote(&words::join(&split))));
            return command;
        }
        let mut script = String::new();
        let arms: Vec<String> = per_state
            .iter()
            .filter_map(|(state, hook)| hook.as_ref().map(|h| format!("{state}) {h} ;;")))
            .collect();
        if !arms.is_empty() {
            script.push_str(&format!("case \"$3\" in {} esac", arms.join(" ")));
        }
        if let Some(any) = &self.any {
            if !script.is_empty() {
                script.push_str("; ");
            }
            script.push_str(&format!("{any} \"$@\""));
        }
        command.push_str(&format!(" --shell --exec {}", words::quote(&script)));
        command
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_state_scripts_become_a_case() {
        let hooks = Hooks {
            master: Some("/etc/keepalived/notify.sh MASTER".into()),
            backup: Some("/etc/keepalived/notify.sh BACKUP".into()),
            ..Default::default()
        };
        assert_eq!(
            hooks.command(&["VI_1".into()]),
            "havipctl watch --instance VI_1 --cursor-file /var/lib/havip-notify/cursor \
             --shell --exec 'case \"$3\" in MASTER) /etc/keepalived/notify.sh MASTER ;; \
             BACKUP) /etc/keepalived/notify.sh BACKUP ;; esac'"
        );
    }

    #[test]
    fn a_generic_notify_runs_directly() {
        let hooks = Hooks {
            any: Some("/etc/keepalived/notify.sh 'a b'".into()),
            ..Default::default()
        };
        assert_eq!(
            hooks.command(&["web".into(), "db".into()]),
            "havipctl watch --instance web,db --cursor-file /var/lib/havip-notify/cursor \
             --exec '/etc/keepalived/notify.sh '\\''a b'\\'''"
        );
        let both = Hooks {
            fault: Some("/x FAULT".into()),
            any: Some("/y".into()),
            ..Default::default()
        };
        assert_eq!(
            both.command(&["web".into()]),
            "havipctl watch --instance web --cursor-file /var/lib/havip-notify/cursor \
             --shell --exec 'case \"$3\" in FAULT) /x FAULT ;; esac; /y \"$@\"'"
        );
    }
}
