//! The log spool is read back in chunks (issue 13: a long database outage must not mean one
//! allocation of the whole spool at replay): every row once, in order, rows appended during a
//! replay kept for the next one, torn lines skipped.

mod support;

use std::io::Write;

use claude_code_hub::adapters::spool_file::FileSpool;
use claude_code_hub::ports::spool::LogSpool;

#[tokio::test]
async fn a_replay_reads_the_spool_chunk_by_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let spool = FileSpool::new(dir.path()).unwrap();
    let rows: Vec<_> = (0..5_000)
        .map(|n| support::log_rows::minimal(&format!("r{n:05}")))
        .collect();
    for batch in rows.chunks(700) {
        spool.append(batch).await.unwrap();
    }
    // A crash mid-write left half a line at the end.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join("request_logs.spool"))
        .unwrap();
    f.write_all(b"{\"request_id\":\"torn").unwrap();
    drop(f);

    let (mut cursor, mut seen, mut chunks) = (0u64, Vec::new(), 0);
    loop {
        let (chunk, next) = spool.pending_chunk(cursor, 2_048).await.unwrap();
        assert!(chunk.len() <= 2_048);
        chunks += 1;
        seen.extend(chunk.into_iter().map(|r| r.request_id));
        if chunks == 1 {
            // Rows arriving during the replay go to a fresh file, not into this replay.
            spool
                .append(&[support::log_rows::minimal("late")])
                .await
                .unwrap();
        }
        match next {
            Some(c) => cursor = c,
            None => break,
        }
    }
    assert_eq!(chunks, 3);
    let expected: Vec<String> = rows.iter().map(|r| r.request_id.clone()).collect();
    assert_eq!(
        seen, expected,
        "every row once, in order; the torn line skipped"
    );
    spool.commit_replay().await.unwrap();
    assert!(!spool.is_empty().await, "the late row waits");
    let (late, next) = spool.pending_chunk(0, 2_048).await.unwrap();
    assert_eq!(late.len(), 1);
    assert_eq!(late[0].request_id, "late");
    assert_eq!(next, None);
    spool.commit_replay().await.unwrap();
    assert!(spool.is_empty().await);
}
