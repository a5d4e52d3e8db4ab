//! Corpus tests (exploration draft).

use std::fs;

use rollout_core::spec::rollout_documents;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/corpus/argo-rollouts");

#[test]
fn explore() {
    let mut names: Vec<_> = fs::read_dir(DIR).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    let mut total = 0;
    for name in names {
        let text = fs::read_to_string(format!("{DIR}/{name}")).unwrap();
        for d in rollout_documents(&text) {
            total += 1;
            match d.result {
                Ok(ro) => {
                    if let Err(e) = ro.validate() {
                        println!("VALIDATE {name} #{}: {}", d.index, e.to_string().replace('\n', " | "));
                    }
                }
                Err(e) => println!("PARSE {name} #{}: {e}", d.index),
            }
        }
    }
    println!("total {total}");
}
