//! Benchmark of the directory search at the scale of the real IMI: 12,600
//! authorities and registers of 30 countries, named in their languages, with
//! competences from the catalogue.
//!
//! Prints the full rebuild time (in memory and on disk), the latency of one
//! upsert + commit, and query latency percentiles over a mix of queries:
//! exact names, names with a typo or without diacritics, partial names,
//! competences with a country name in another language, transliterated
//! Greek and Bulgarian, filters only.
//!
//! Run with `cargo bench -p imi-search --bench search`.

use std::time::{Duration, Instant};

use imi_protocol::{Catalogue, Country, Language};
use imi_search::{DirectoryEntry, EntryKind, Filters, Query, SearchIndex};

const AUTHORITIES: usize = 12_600;
const ROUNDS: usize = 5;
const RUNS_PER_ROUND: usize = 4_000;

/// A small deterministic generator (xorshift64*), so every run indexes the
/// same directory.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Words that name institutions, per language.
fn institutions(language: Language) -> &'static [&'static str] {
    match language {
        Language::Bg => &["Камара", "Агенция", "Регионална инспекция", "Съвет"],
        Language::Cs => &["Komora", "Úřad", "Inspektorát", "Rada"],
        Language::Da => &["Styrelsen", "Nævnet", "Tilsynet", "Rådet"],
        Language::De => &["Kammer", "Behörde", "Landesamt", "Aufsicht"],
        Language::El => &["Επιμελητήριο", "Αρχή", "Περιφερειακή Διεύθυνση", "Σύλλογος"],
        Language::En => &["Council", "Authority", "Regional Office", "Board"],
        Language::Es => &["Colegio", "Consejería", "Dirección General", "Agencia"],
        Language::Et => &["Koda", "Amet", "Inspektsioon", "Nõukogu"],
        Language::Fi => &["Liitto", "Virasto", "Aluehallintovirasto", "Lautakunta"],
        Language::Fr => &["Ordre", "Direction régionale", "Agence", "Conseil"],
        Language::Ga => &["Comhairle", "Údarás", "Oifig", "Bord"],
        Language::Hr => &["Komora", "Agencija", "Ured", "Inspektorat"],
        Language::Hu => &["Kamara", "Hivatal", "Hatóság", "Tanács"],
        Language::It => &["Ordine", "Agenzia", "Ufficio regionale", "Consiglio"],
        Language::Lt => &["Rūmai", "Tarnyba", "Inspekcija", "Taryba"],
        Language::Lv => &["Palāta", "Dienests", "Inspekcija", "Padome"],
        Language::Mt => &["Kunsill", "Awtorità", "Uffiċċju", "Bord"],
        Language::Nl => &["Kamer", "Autoriteit", "Inspectie", "Raad"],
        Language::Pl => &["Izba", "Urząd", "Inspektorat", "Rada"],
        Language::Pt => &["Ordem", "Autoridade", "Direção Regional", "Conselho"],
        Language::Ro => &["Colegiul", "Autoritatea", "Inspectoratul", "Consiliul"],
        Language::Sk => &["Komora", "Úrad", "Inšpektorát", "Rada"],
        Language::Sl => &["Zbornica", "Urad", "Inšpektorat", "Svet"],
        Language::Sv => &["Förbundet", "Myndigheten", "Inspektionen", "Nämnden"],
        Language::Is => &["Ráð", "Stofnun", "Eftirlit", "Nefnd"],
        Language::No => &["Forbundet", "Direktoratet", "Tilsynet", "Rådet"],
    }
}

/// Some cities of each country.
fn cities(country: Country) -> &'static [&'static str] {
    match country {
        Country::At => &["Wien", "Graz", "Linz", "Salzburg", "Innsbruck"],
        Country::Be => &["Brussel", "Antwerpen", "Gent", "Liège", "Namur"],
        Country::Bg => &["София", "Пловдив", "Варна", "Бургас", "Русе"],
        Country::Hr => &["Zagreb", "Split", "Rijeka", "Osijek", "Zadar"],
        Country::Cy => &["Λευκωσία", "Λεμεσός", "Λάρνακα", "Πάφος"],
        Country::Cz => &["Praha", "Brno", "Ostrava", "Plzeň", "Olomouc"],
        Country::Dk => &["København", "Aarhus", "Odense", "Aalborg"],
        Country::Ee => &["Tallinn", "Tartu", "Narva", "Pärnu"],
        Country::Fi => &["Helsinki", "Tampere", "Turku", "Oulu", "Jyväskylä"],
        Country::Fr => &["Paris", "Lyon", "Marseille", "Toulouse", "Lille", "Nantes"],
        Country::De => &[
            "Berlin",
            "München",
            "Hamburg",
            "Köln",
            "Stuttgart",
            "Dresden",
        ],
        Country::Gr => &["Αθήνα", "Θεσσαλονίκη", "Πάτρα", "Ηράκλειο", "Λάρισα"],
        Country::Hu => &["Budapest", "Debrecen", "Szeged", "Pécs", "Győr"],
        Country::Ie => &["Dublin", "Cork", "Galway", "Limerick"],
        Country::It => &["Roma", "Milano", "Napoli", "Torino", "Bologna", "Firenze"],
        Country::Lv => &["Rīga", "Daugavpils", "Liepāja", "Jelgava"],
        Country::Lt => &["Vilnius", "Kaunas", "Klaipėda", "Šiauliai"],
        Country::Lu => &["Luxembourg", "Esch-sur-Alzette", "Differdange"],
        Country::Mt => &["Valletta", "Birkirkara", "Mosta", "Qormi"],
        Country::Nl => &["Amsterdam", "Rotterdam", "Den Haag", "Utrecht", "Eindhoven"],
        Country::Pl => &["Warszawa", "Kraków", "Łódź", "Wrocław", "Poznań", "Gdańsk"],
        Country::Pt => &["Lisboa", "Porto", "Coimbra", "Braga", "Faro"],
        Country::Ro => &["București", "Cluj-Napoca", "Iași", "Timișoara", "Constanța"],
        Country::Sk => &["Bratislava", "Košice", "Prešov", "Žilina", "Nitra"],
        Country::Si => &["Ljubljana", "Maribor", "Celje", "Kranj", "Koper"],
        Country::Es => &[
            "Madrid",
            "Barcelona",
            "Valencia",
            "Sevilla",
            "Bilbao",
            "Zaragoza",
        ],
        Country::Se => &["Stockholm", "Göteborg", "Malmö", "Uppsala", "Umeå"],
        Country::Is => &["Reykjavík", "Akureyri", "Kópavogur"],
        Country::Li => &["Vaduz", "Schaan", "Balzers"],
        Country::No => &["Oslo", "Bergen", "Trondheim", "Stavanger", "Tromsø"],
        Country::Eu => &["Bruxelles"],
    }
}

fn generate(catalogue: &Catalogue) -> Vec<DirectoryEntry> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let countries = Country::MEMBERS;
    let professions = catalogue.professions();
    let areas = catalogue.areas();
    let mut entries = Vec::with_capacity(AUTHORITIES);
    for i in 0..AUTHORITIES {
        let country = countries[i % countries.len()];
        let city = *rng.pick(cities(country));
        let by_profession = rng.below(3) > 0;
        let mut entry = DirectoryEntry {
            id: format!("{}-{i:05}", country.code().to_ascii_lowercase()),
            kind: if i % 10 == 0 {
                EntryKind::Register
            } else {
                EntryKind::Authority
            },
            country,
            names: Vec::new(),
            areas: Vec::new(),
            procedures: Vec::new(),
            professions: Vec::new(),
            other_competences: Vec::new(),
            city: Some(city.to_owned()),
            region: None,
            languages: country.official_languages().to_vec(),
            url: None,
        };
        let institution = rng.below(4);
        if by_profession {
            let count = 1 + rng.below(3);
            for _ in 0..count {
                let profession = rng.pick(professions);
                if !entry.professions.contains(&profession.key) {
                    entry.professions.push(profession.key.clone());
                }
            }
            let main = catalogue
                .profession(&entry.professions[0])
                .expect("generated from the catalogue");
            for language in country.official_languages() {
                entry.names.push((
                    *language,
                    format!(
                        "{} {} {city}",
                        institutions(*language)[institution],
                        main.label.get(*language)
                    ),
                ));
            }
        } else {
            let area = rng.pick(areas);
            entry.areas.push(area.key.clone());
            let procedures: Vec<_> = catalogue.procedures_of(&area.key).collect();
            if !procedures.is_empty() {
                entry.procedures.push(rng.pick(&procedures).key.clone());
            }
            for language in country.official_languages() {
                entry.names.push((
                    *language,
                    format!(
                        "{} {} {city}",
                        institutions(*language)[institution],
                        area.label.get(*language)
                    ),
                ));
            }
        }
        if rng.below(5) == 0 {
            entry
                .other_competences
                .push(format!("{city} {}", rng.below(100)));
        }
        entries.push(entry);
    }
    entries
}

/// Drops accents from Latin letters, the way people type without them.
fn strip_diacritics(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            'á' | 'à' | 'â' | 'ä' | 'ã' | 'å' | 'ā' => 'a',
            'é' | 'è' | 'ê' | 'ë' | 'ě' | 'ē' => 'e',
            'í' | 'ì' | 'î' | 'ï' | 'ī' => 'i',
            'ó' | 'ò' | 'ô' | 'ö' | 'õ' | 'ő' => 'o',
            'ú' | 'ù' | 'û' | 'ü' | 'ů' | 'ű' | 'ū' => 'u',
            'ç' | 'č' | 'ć' => 'c',
            'š' | 'ș' => 's',
            'ž' | 'ż' | 'ź' => 'z',
            'ř' => 'r',
            'ł' => 'l',
            'ñ' | 'ň' => 'n',
            'ț' => 't',
            other => other,
        })
        .collect()
}

/// Swaps two letters in the middle of the longest word.
fn with_typo(text: &str) -> String {
    let longest = text
        .split(' ')
        .max_by_key(|w| w.chars().count())
        .unwrap_or(text);
    let mut chars: Vec<char> = longest.chars().collect();
    if chars.len() >= 5 {
        let middle = chars.len() / 2;
        chars.swap(middle, middle + 1);
    }
    text.replacen(longest, &chars.into_iter().collect::<String>(), 1)
}

fn queries(entries: &[DirectoryEntry], catalogue: &Catalogue) -> Vec<Query> {
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let mut queries = Vec::new();
    let languages = Language::EU;
    for _ in 0..60 {
        let entry = rng.pick(entries);
        let (language, name) = entry.names[0].clone();
        queries.push(Query::new(name.clone(), language));
        queries.push(Query::new(with_typo(&name), language));
        queries.push(Query::new(strip_diacritics(&name), language));
        let partial: Vec<&str> = name.split(' ').take(2).collect();
        queries.push(Query::new(partial.join(" "), *rng.pick(&languages)));
    }
    for _ in 0..80 {
        let language = *rng.pick(&languages);
        let profession = rng.pick(catalogue.professions());
        let country = *rng.pick(&Country::MEMBERS);
        queries.push(Query::new(
            format!(
                "{} {}",
                profession.label.get(language),
                catalogue.country_name(country, language)
            ),
            language,
        ));
        queries.push(Query::new(profession.label.get(language), language));
    }
    for text in [
        "Iatrikos Syllogos Athinon",
        "Επιμελητήριο Ιατρός",
        "Balgarski lekarski sayuz",
        "лекар България",
        "Ärztekammer Portugal",
        "lääkäri Portugali",
        "Zdravniska zbornica",
        "slovenskej lekárskej komory",
        "Portugal",
        "data protection",
    ] {
        queries.push(Query::new(text, Language::En));
    }
    for _ in 0..20 {
        let area = rng.pick(catalogue.areas());
        queries.push(Query::new("", Language::Fr).with_filters(Filters {
            countries: vec![*rng.pick(&Country::MEMBERS)],
            areas: vec![area.key.clone()],
            ..Filters::default()
        }));
    }
    queries
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn micros(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

/// The resident memory of this process, as the kernel reports it.
fn resident_memory() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmRSS:"))
                .map(|line| line.trim_start_matches("VmRSS:").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

fn main() {
    let catalogue = Catalogue::builtin();
    let entries = generate(catalogue);
    let names: usize = entries.iter().map(|e| e.names.len()).sum();
    println!(
        "directory: {} entries of {} countries, {names} names",
        entries.len(),
        Country::MEMBERS.len()
    );

    println!(
        "resident memory with the generated directory: {}",
        resident_memory()
    );
    let started = Instant::now();
    let index = SearchIndex::create_in_ram(catalogue).expect("index in memory");
    let opened = started.elapsed();
    println!("resident memory with an empty index: {}", resident_memory());
    let started = Instant::now();
    let report = index.rebuild(&entries).expect("rebuild in memory");
    let rebuild_ram = started.elapsed();
    assert_eq!(report.indexed, AUTHORITIES);
    println!(
        "open (vocabulary of the catalogue): {:.1} ms",
        opened.as_secs_f64() * 1e3
    );
    println!(
        "full rebuild, in memory: {:.0} ms",
        rebuild_ram.as_secs_f64() * 1e3
    );
    println!(
        "resident memory with the index in memory: {}",
        resident_memory()
    );

    let dir = std::env::temp_dir().join(format!("imi-search-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let on_disk = SearchIndex::open_in_dir(&dir, catalogue).expect("index on disk");
    let started = Instant::now();
    on_disk.rebuild(&entries).expect("rebuild on disk");
    let rebuild_disk = started.elapsed();
    println!(
        "full rebuild, on disk: {:.0} ms",
        rebuild_disk.as_secs_f64() * 1e3
    );
    let mut commits = Vec::new();
    for entry in entries.iter().take(20) {
        let mut changed = entry.clone();
        changed.names[0].1.push_str(" (updated)");
        let started = Instant::now();
        on_disk.upsert(&changed).expect("upsert");
        on_disk.commit().expect("commit");
        commits.push(started.elapsed());
    }
    commits.sort();
    println!(
        "one upsert + commit, on disk, until searchable: p50 {:.1} ms, max {:.1} ms",
        percentile(&commits, 0.5).as_secs_f64() * 1e3,
        commits[commits.len() - 1].as_secs_f64() * 1e3
    );
    println!(
        "resident memory with both indexes open: {}",
        resident_memory()
    );
    drop(on_disk);
    let _ = std::fs::remove_dir_all(&dir);

    let queries = queries(&entries, catalogue);
    if let Ok(texts) = std::env::var("IMI_PROFILE") {
        for text in texts.split('|') {
            for _ in 0..3 {
                let _ = index.search(&Query::new(text, Language::Fi));
            }
        }
        return;
    }
    // Warm up: every query once.
    let mut found = 0;
    for query in &queries {
        if index.search(query).expect("search").total > 0 {
            found += 1;
        }
    }
    // For profilers: only queries, for the given number of seconds.
    if let Some(seconds) = std::env::var("IMI_BENCH_LOOP_SECONDS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    {
        let until = Instant::now() + Duration::from_secs(seconds);
        let mut run = 0;
        while Instant::now() < until {
            std::hint::black_box(index.search(&queries[run % queries.len()]).expect("search"));
            run += 1;
        }
        println!("{run} queries");
        return;
    }
    // The machine may be shared: several rounds, each reported, and the
    // quietest (lowest p99) taken as the figure.
    println!(
        "load average before querying: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split(' ')
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mut rounds = Vec::new();
    let mut latencies = Vec::new();
    for round in 0..ROUNDS {
        let mut this_round = Vec::with_capacity(RUNS_PER_ROUND);
        for run in 0..RUNS_PER_ROUND {
            let query = &queries[(round * RUNS_PER_ROUND + run) % queries.len()];
            let started = Instant::now();
            let results = index.search(query).expect("search");
            this_round.push(started.elapsed());
            std::hint::black_box(results);
        }
        latencies.extend(this_round.iter().copied());
        this_round.sort();
        println!(
            "  round {}: p50 {}, p99 {}, max {}",
            round + 1,
            micros(percentile(&this_round, 0.5)),
            micros(percentile(&this_round, 0.99)),
            micros(this_round[this_round.len() - 1])
        );
        rounds.push(this_round);
    }
    if std::env::var_os("IMI_BENCH_COSTLIEST").is_some() {
        let mut per_query: Vec<(Duration, &Query)> = queries
            .iter()
            .enumerate()
            .map(|(i, q)| {
                // The fastest run of a query is its own cost, without the
                // noise of other processes.
                let worst = latencies
                    .iter()
                    .enumerate()
                    .filter(|(run, _)| run % queries.len() == i)
                    .map(|(_, d)| d)
                    .min()
                    .copied()
                    .unwrap_or_default();
                (worst, q)
            })
            .collect();
        per_query.sort_by_key(|(cost, _)| std::cmp::Reverse(*cost));
        for (worst, query) in per_query.iter().take(25) {
            let total = index.search(query).map(|r| r.total).unwrap_or(0);
            println!(
                "  costliest (fastest run) {:>6} [{}] {:?} {:?} total {total}",
                micros(*worst),
                query.language,
                query.text,
                query.filters.countries
            );
        }
    }
    // Each query's fastest run is its own cost, free of other processes'
    // noise on a shared machine.
    let mut fastest: Vec<Duration> = (0..queries.len())
        .map(|i| {
            latencies
                .iter()
                .enumerate()
                .filter(|(run, _)| run % queries.len() == i)
                .map(|(_, d)| *d)
                .min()
                .unwrap_or_default()
        })
        .collect();
    fastest.sort();
    latencies.sort();
    let mean = latencies.iter().sum::<Duration>() / latencies.len() as u32;
    println!(
        "query cost (fastest run of each distinct query): p50 {}, p90 {}, p99 {}, max {}",
        micros(percentile(&fastest, 0.5)),
        micros(percentile(&fastest, 0.9)),
        micros(percentile(&fastest, 0.99)),
        micros(fastest[fastest.len() - 1])
    );
    println!(
        "queries: {} distinct ({} with results), {} runs, 20 hits per page with facets and snippets",
        queries.len(),
        found,
        latencies.len()
    );
    println!(
        "query latency, all rounds: p50 {}, p90 {}, p99 {}, max {}, mean {}",
        micros(percentile(&latencies, 0.5)),
        micros(percentile(&latencies, 0.9)),
        micros(percentile(&latencies, 0.99)),
        micros(latencies[latencies.len() - 1]),
        micros(mean)
    );
    let quietest = rounds
        .iter()
        .min_by_key(|round| percentile(round, 0.99))
        .expect("at least one round");
    println!(
        "query latency, quietest round: p50 {}, p90 {}, p99 {}",
        micros(percentile(quietest, 0.5)),
        micros(percentile(quietest, 0.9)),
        micros(percentile(quietest, 0.99)),
    );
}
