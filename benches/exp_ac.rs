use aho_corasick::{AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use std::time::Instant;
fn main() {
    let zh = [
        "机密", "内部", "禁止", "项目", "密钥", "客户", "合同", "财务", "政治", "暴力",
    ];
    let en = [
        "password",
        "secret",
        "confidential",
        "internal",
        "leak",
        "token",
        "exploit",
        "malware",
        "weapon",
        "drugs",
    ];
    // realistic-ish: mostly Chinese words of 2-4 chars and English words with suffixes
    let words: Vec<String> = (0..9400)
        .map(|i| {
            if i % 2 == 0 {
                format!("{}{}{}", zh[i % 10], zh[(i / 10) % 10], zh[(i / 100) % 10])
            } else {
                format!("{}{}", en[i % 10], i)
            }
        })
        .collect();
    let src = "fn handle(req: Request) -> Result<Response, Error> {\n    let body = req.body()?; // parse and validate\n    process(body).map_err(Error::from)\n}\n";
    let text = src.repeat(1_000_000 / src.len());
    for (name, kind) in [("nfa-auto", None), ("dfa", Some(AhoCorasickKind::DFA))] {
        for pf in [true, false] {
            let ac = AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::Standard)
                .kind(kind)
                .prefilter(pf)
                .build(&words)
                .unwrap();
            let t = Instant::now();
            for _ in 0..20 {
                assert!(ac.find(&text).is_none());
            }
            println!(
                "{name} prefilter={pf}: scan {:.3} ms mem {} KB",
                t.elapsed().as_secs_f64() * 1e3 / 20.0,
                ac.memory_usage() / 1024
            );
        }
    }
}
