//! history: past transitions (or config changes with --config), newest first, following
//! page tokens until --limit entries are shown.

use std::future::Future;

use havip_proto::v1::history_service_client::HistoryServiceClient;
use havip_proto::v1::{
    ConfigChange, HistoryFilter, ListConfigChangesRequest, ListTransitionsRequest, Transition,
};
use serde::Serialize;

use super::Ctx;
use crate::args::HistoryArgs;
use crate::error::CliError;
use crate::output::format::{self, Clock};
use crate::output::table::Table;

/// The most havipd returns in one page.
const MAX_PAGE: u32 = 1000;

pub async fn run(ctx: &Ctx, args: &HistoryArgs) -> Result<(), CliError> {
    let client = HistoryServiceClient::new(ctx.connect().await?);
    let filter = HistoryFilter {
        instance: args.instance.clone().unwrap_or_default(),
        since: args.since,
        until: args.until,
    };
    if args.config {
        let (changes, more) = fetch(args.limit, |page_size, page_token| {
            let mut client = client.clone();
            let request = ListConfigChangesRequest {
                filter: Some(filter.clone()),
                page_size,
                page_token,
            };
            async move {
                let page = ctx.call(request, |r| client.list_config_changes(r)).await?;
                Ok((page.changes, page.next_page_token))
            }
        })
        .await?;
        show(ctx, &changes, more, "config changes", config_table)
    } else {
        let (transitions, more) = fetch(args.limit, |page_size, page_token| {
            let mut client = client.clone();
            let request = ListTransitionsRequest {
                filter: Some(filter.clone()),
                page_size,
                page_token,
            };
            async move {
                let page = ctx.call(request, |r| client.list_transitions(r)).await?;
                Ok((page.transitions, page.next_page_token))
            }
        })
        .await?;
        show(ctx, &transitions, more, "transitions", transitions_table)
    }
}

fn show<T: Serialize>(
    ctx: &Ctx,
    items: &[T],
    more: bool,
    what: &str,
    table: fn(&[T], &Clock) -> String,
) -> Result<(), CliError> {
    if ctx.out.is_table() {
        if items.is_empty() {
            eprintln!("no {what}");
        } else {
            ctx.out.text(&table(items, &ctx.clock))?;
        }
    } else {
        for item in items {
            ctx.out.record(item)?;
        }
    }
    if more {
        eprintln!(
            "showing the newest {} {what}; there are more (raise --limit or narrow --since/--until)",
            items.len()
        );
    }
    Ok(())
}

/// Fetches pages until `limit` items or the last page. Returns the items and whether
/// there are more than were fetched. Each page asks only for what is still missing, so
/// havipd sends nothing that is thrown away.
async fn fetch<T, F, Fut>(limit: u32, mut page: F) -> Result<(Vec<T>, bool), CliError>
where
    F: FnMut(u32, String) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, String), CliError>>,
{
    let mut items = Vec::new();
    let mut token = String::new();
    loop {
        let missing = limit.saturating_sub(u32::try_from(items.len()).unwrap_or(u32::MAX));
        let (mut batch, next) = page(missing.min(MAX_PAGE), token).await?;
        // A server may send a larger page than asked for; show no more than --limit.
        let room = usize::try_from(missing).unwrap_or(usize::MAX);
        let over = batch.len() > room;
        batch.truncate(room);
        items.extend(batch);
        if next.is_empty() && !over {
            return Ok((items, false));
        }
        if items.len() >= usize::try_from(limit).unwrap_or(usize::MAX) {
            return Ok((items, true));
        }
        token = next;
    }
}

fn transitions_table(transitions: &[Transition], clock: &Clock) -> String {
    let mut table = Table::new(&["TIME", "INSTANCE", "TRANSITION", "REASON", "PRIO", "MASTER"]);
    for t in transitions {
        table.push(vec![
            clock.time(t.time.as_ref()),
            t.instance.clone(),
            format::states(t),
            format::reason(t.reason.as_ref()),
            t.priority.to_string(),
            dash_if_empty(&t.master_address),
        ]);
    }
    table.render()
}

fn config_table(changes: &[ConfigChange], clock: &Clock) -> String {
    let mut table = Table::new(&[
        "TIME", "INSTANCE", "REV", "CHANGE", "BY", "FIELDS", "COMMENT",
    ]);
    for c in changes {
        table.push(vec![
            clock.time(c.time.as_ref()),
            c.instance.clone(),
            c.revision.to_string(),
            format::change_kind(c.kind),
            dash_if_empty(&c.actor),
            dash_if_empty(&c.changed_fields.join(",")),
            c.comment.clone(),
        ]);
    }
    table.render()
}

fn dash_if_empty(text: &str) -> String {
    if text.is_empty() {
        "-".to_owned()
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use havip_proto::v1::{ChangeKind, State, TransitionReason};
    use pbjson_types::Timestamp;
    use std::cell::RefCell;

    /// A fake history of `total` items served `page_size` at a time at most, recording
    /// the page sizes asked for.
    async fn run_fetch(total: u32, page_size: u32, limit: u32) -> (Vec<u32>, bool, Vec<u32>) {
        let asked = RefCell::new(Vec::new());
        let (items, more) = fetch(limit, |size, token| {
            asked.borrow_mut().push(size);
            let start: u32 = if token.is_empty() {
                0
            } else {
                token.parse().unwrap()
            };
            let end = (start + size.min(page_size)).min(total);
            let next = if end < total {
                end.to_string()
            } else {
                String::new()
            };
            async move { Ok(((start..end).collect(), next)) }
        })
        .await
        .unwrap();
        (items, more, asked.into_inner())
    }

    #[tokio::test]
    async fn pages_are_followed_up_to_the_limit() {
        let (items, more, asked) = run_fetch(120, 25, 60).await;
        assert_eq!(items, (0..60).collect::<Vec<_>>());
        assert!(more);
        assert_eq!(asked, [60, 35, 10]);
    }

    #[tokio::test]
    async fn the_last_page_ends_the_listing() {
        let (items, more, asked) = run_fetch(30, 25, 50).await;
        assert_eq!(items.len(), 30);
        assert!(!more);
        assert_eq!(asked, [50, 25]);
    }

    #[tokio::test]
    async fn an_exact_fit_knows_whether_there_is_more() {
        let (items, more, _) = run_fetch(50, 100, 50).await;
        assert_eq!(items.len(), 50);
        assert!(!more);
        let (_, more, _) = run_fetch(51, 100, 50).await;
        assert!(more);
    }

    #[tokio::test]
    async fn an_oversized_page_is_cut_to_the_limit() {
        let (items, more) = fetch(3, |_, _| async {
            Ok(((0..10).collect::<Vec<u32>>(), String::new()))
        })
        .await
        .unwrap();
        assert_eq!(items, [0, 1, 2]);
        assert!(more);
    }

    fn clock() -> Clock {
        Clock {
            now: "2026-11-26T12:00:00Z".parse().unwrap(),
            tz: jiff::tz::TimeZone::UTC,
        }
    }

    #[test]
    fn transition_table() {
        let t = Transition {
            instance: "web".into(),
            from: State::Backup as i32,
            to: State::Master as i32,
            reason: Some(TransitionReason {
                code: "master_down_timer".into(),
                description: "master-down timer expired".into(),
                peer_address: String::new(),
            }),
            priority: 100,
            master_address: "10.0.0.11".into(),
            time: Some(Timestamp {
                seconds: 1_795_694_400 - 120,
                nanos: 0,
            }),
            seq: 3,
        };
        assert_eq!(
            transitions_table(&[t], &clock()),
            "\
TIME                          INSTANCE  TRANSITION       REASON                     PRIO  MASTER
2026-11-26 11:58:00 (2m ago)  web       BACKUP → MASTER  master-down timer expired  100   10.0.0.11
"
        );
    }

    #[test]
    fn config_change_table() {
        let c = ConfigChange {
            instance: "web".into(),
            revision: 4,
            kind: ChangeKind::Update as i32,
            actor: "uid:0".into(),
            time: Some(Timestamp {
                seconds: 1_795_694_400 - 7200,
                nanos: 0,
            }),
            changed_fields: vec!["priority".into(), "unicast_peers".into()],
            comment: "swap roles".into(),
            ..Default::default()
        };
        assert_eq!(
            config_table(&[c], &clock()),
            "\
TIME                          INSTANCE  REV  CHANGE  BY     FIELDS                  COMMENT
2026-11-26 10:00:00 (2h ago)  web       4    update  uid:0  priority,unicast_peers  swap roles
"
        );
    }
}
