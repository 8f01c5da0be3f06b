use super::*;

fn spec(detectors: &[&str], monitors: &[&[&str]]) -> Spec {
    let mut text = String::from("detectors:\n");
    for name in detectors {
        text.push_str(&format!(
            "  - {{name: {name}, feature: {{field: UNK_country}}}}\n"
        ));
    }
    if !monitors.is_empty() {
        text.push_str("monitors:\n");
        for (i, watched) in monitors.iter().enumerate() {
            text.push_str(&format!(
                "  - {{name: m{i}, detectors: [{}], channels: [hook]}}\n",
                watched.join(", ")
            ));
        }
        text.push_str("channels:\n  - {name: hook, webhook: {value: \"http://127.0.0.1:9/\"}}\n");
    }
    Spec::parse(&text, "test").expect("a valid spec")
}

fn names(spec: &Spec) -> (Vec<&str>, Vec<&str>) {
    (
        spec.detectors.iter().map(|d| d.name.as_str()).collect(),
        spec.monitors.iter().map(|m| m.name.as_str()).collect(),
    )
}

#[test]
fn a_monitor_keeps_its_detectors_in_one_shard() {
    // m0 watches a and c together; b, d and e have a monitor each or none.
    let spec = spec(&["a", "b", "c", "d", "e"], &[&["a", "c"], &["b"], &["d"]]);
    assert_eq!(most(&spec), 4);
    let parts = split(&spec, 2);
    let named: Vec<_> = parts.iter().map(names).collect();
    // The group {a, c} weighs 2 and goes first; then b, d, e, one each, to the lighter shard
    // (the lower one on a tie).
    assert_eq!(
        named,
        vec![
            (vec!["a", "c", "e"], vec!["m0"]),
            (vec!["b", "d"], vec!["m1", "m2"]),
        ]
    );
    for part in &parts {
        assert_eq!(
            part.channels, spec.channels,
            "every shard keeps every channel"
        );
    }
    // Each detector is in exactly one shard, whatever the count.
    for count in 1..=4 {
        let parts = split(&spec, count);
        assert_eq!(parts.len(), count);
        let mut all: Vec<&str> = parts
            .iter()
            .flat_map(|p| p.detectors.iter().map(|d| d.name.as_str()))
            .collect();
        all.sort_unstable();
        assert_eq!(all, ["a", "b", "c", "d", "e"], "{count} shards");
    }
    // Beyond the groups there is nothing to split: the most is used.
    assert_eq!(split(&spec, 9).len(), 4);
}

#[test]
fn the_split_depends_on_the_spec_alone() {
    let spec = Spec::default_spec().expect("the default spec");
    let once = split(&spec, 3);
    let again = split(&spec, 3);
    assert_eq!(once, again);
    let sizes: Vec<usize> = once.iter().map(|p| p.detectors.len()).collect();
    assert!(
        sizes.iter().max().unwrap_or(&0) - sizes.iter().min().unwrap_or(&0) <= 4,
        "the default spec's shards are about even: {sizes:?}"
    );
    assert_eq!(
        sizes.iter().sum::<usize>(),
        spec.detectors.len(),
        "no detector lost or doubled"
    );
}

#[test]
fn one_shard_keeps_the_documents_of_before() {
    assert_eq!(Part::WHOLE.lease_id(), "_lease");
    assert_eq!(Part::WHOLE.checkpoint_id(), "_checkpoint");
    assert_eq!(Part::default().lease_id(), "_lease");
    let part = Part { index: 2, of: 3 };
    assert_eq!(part.lease_id(), "_lease-2-of-3");
    assert_eq!(part.checkpoint_id(), "_checkpoint-2-of-3");
    assert_eq!(crate::service::no_data_note(part), "no_data (shard 2)");
    assert_eq!(crate::service::no_data_note(Part::WHOLE), "no_data");
    assert_eq!(part.to_string(), "2/3");
}

#[test]
fn a_replica_aims_at_its_fair_share() {
    let now = Instant::now();
    let long_ago = now - Duration::from_secs(60);
    let orphaned = Duration::from_secs(6);
    let free = |shards: &[usize], since: Instant| -> BTreeMap<usize, Seen> {
        shards.iter().map(|&s| (s, Seen::Free(since))).collect()
    };
    let set = |shards: &[usize]| shards.iter().copied().collect::<BTreeSet<usize>>();
    assert_eq!(share(4, 1), 4);
    assert_eq!(share(4, 3), 2);
    assert_eq!(share(5, 2), 3);
    assert_eq!(share(2, 0), 2, "no member seen yet counts as one");

    // Alone: takes every free shard, starting at its offset.
    let alone = plan(&set(&[]), &free(&[0, 1, 2, 3], now), 4, 1, 2, now, orphaned);
    assert_eq!(alone.take, vec![2, 3, 0, 1]);
    assert_eq!(alone.hand_back, None);

    // A second replica joined: the first hands back one shard a round, its highest.
    let crowded = plan(
        &set(&[0, 1, 2, 3]),
        &BTreeMap::new(),
        4,
        2,
        0,
        now,
        orphaned,
    );
    assert_eq!(
        crowded,
        Moves {
            take: vec![],
            hand_back: Some(3)
        }
    );
    let at_share = plan(&set(&[0, 1]), &BTreeMap::new(), 4, 2, 0, now, orphaned);
    assert_eq!(at_share, Moves::default());

    // The newcomer takes free shards up to its share, not those held by others.
    let mut seen = free(&[3], now);
    seen.insert(0, Seen::Held("a".into()));
    seen.insert(1, Seen::Held("a".into()));
    seen.insert(2, Seen::Free(now));
    let newcomer = plan(&set(&[]), &seen, 4, 2, 1, now, orphaned);
    assert_eq!(newcomer.take, vec![2, 3]);

    // At its share, a replica leaves a free shard to others, until it has been free too long.
    let fresh = plan(&set(&[0, 1]), &free(&[2], now), 4, 3, 0, now, orphaned);
    assert_eq!(share(4, 3), 2);
    assert_eq!(fresh.take, Vec::<usize>::new());
    let stranded = plan(&set(&[0, 1]), &free(&[2], long_ago), 4, 3, 0, now, orphaned);
    assert_eq!(stranded.take, vec![2]);
}

/// `spec(..)` with detector `name` made a category detector whose entities are split in `parts`.
fn with_parts(mut spec: Spec, name: &str, parts: usize) -> Spec {
    let detector = spec
        .detectors
        .iter_mut()
        .find(|d| d.name == name)
        .expect("the detector");
    detector.category = Some(crate::spec::Category {
        field: "httpRequest.clientIp".into(),
        max_entities: 100,
        idle: Duration::from_secs(3_600),
        parts,
        part: None,
    });
    spec
}

#[test]
fn a_split_detector_puts_each_part_of_its_entities_in_a_shard_of_its_own() {
    // c's entities are split in 3; a and b are plain, each with a monitor; m2 watches c.
    let spec = with_parts(spec(&["a", "b", "c"], &[&["a"], &["b"], &["c"]]), "c", 3);
    assert_eq!((least(&spec), most(&spec)), (3, 5));
    let shards = split(&spec, 3);
    let held: Vec<Vec<(&str, Option<usize>)>> = shards
        .iter()
        .map(|s| {
            s.detectors
                .iter()
                .map(|d| (d.name.as_str(), d.category.as_ref().and_then(|c| c.part)))
                .collect()
        })
        .collect();
    // c's parts weigh 4 each and go first, one per shard; a and b then go to the lighter ones.
    assert_eq!(
        held,
        vec![
            vec![("a", None), ("c", Some(0))],
            vec![("b", None), ("c", Some(1))],
            vec![("c", Some(2))],
        ]
    );
    let monitors: Vec<Vec<&str>> = shards
        .iter()
        .map(|s| s.monitors.iter().map(|m| m.name.as_str()).collect())
        .collect();
    assert_eq!(
        monitors,
        vec![
            vec!["m0", "m2 (entities 0/3)"],
            vec!["m1", "m2 (entities 1/3)"],
            vec!["m2 (entities 2/3)"],
        ],
        "each part alerts on its own entities, under a name of its own"
    );
    // Fewer shards than parts cannot be: the count is raised to the parts.
    assert_eq!(split(&spec, 1).len(), 3);
    // With more shards, still one part per shard, and every part somewhere.
    let shards = split(&spec, 5);
    let mut parts: Vec<usize> = shards
        .iter()
        .flat_map(|s| s.detectors.iter())
        .filter_map(|d| d.category.as_ref()?.part)
        .collect();
    parts.sort_unstable();
    assert_eq!(parts, [0, 1, 2]);
    assert!(
        shards
            .iter()
            .all(|s| s.detectors.iter().filter(|d| d.name == "c").count() <= 1)
    );
}

#[test]
fn the_parts_of_entities_cover_them_all_once_and_evenly() {
    let category = |part| crate::spec::Category {
        field: "ip".into(),
        max_entities: 100,
        idle: Duration::from_secs(3_600),
        parts: 4,
        part: Some(part),
    };
    let mut sizes = [0_usize; 4];
    for i in 0..10_000 {
        let entity = format!("10.{}.{}.{}", i / 65_536, (i / 256) % 256, i % 256);
        let holders: Vec<usize> = (0..4).filter(|&p| category(p).holds(&entity)).collect();
        assert_eq!(holders.len(), 1, "{entity} is in one part: {holders:?}");
        sizes[holders[0]] += 1;
    }
    assert!(
        sizes.iter().all(|&n| (2_300..=2_700).contains(&n)),
        "10,000 addresses split about evenly in 4: {sizes:?}"
    );
}
