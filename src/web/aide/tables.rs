//! The live tables of the guides (`{{< bareme >}}`, `plans`, `packs`): priced by the same
//! `quote` as the simulator, from the catalog in force.

use super::*;

// ---------------------------------------------------------------- live tables

/// A row of the live price schedule: a setting, and its cost on each plan.
pub struct BaremeRow {
    pub creation: CreationType,
    pub setting: Setting,
    pub costs: Vec<Result<i64, String>>,
}

pub enum Setting {
    UpTo {
        seconds: u16,
        four_k: bool,
    },
    Image {
        four_k: bool,
    },
    Pages {
        pages: u16,
        illustrations: Illustrations,
        percents: Vec<i64>,
    },
}

#[derive(Template)]
#[template(path = "aide/live_bareme.html")]
struct BaremeTable<'a> {
    plans: &'a [Plan],
    rows: Vec<BaremeRow>,
    since: time::Date,
}

#[derive(Template)]
#[template(path = "aide/live_plans.html")]
struct PlansTable<'a> {
    plans: &'a [Plan],
}

#[derive(Template)]
#[template(path = "aide/live_packs.html")]
struct PacksTable<'a> {
    packs: &'a [Pack],
}

impl BaremeRow {
    pub fn is_rich(&self) -> bool {
        matches!(
            self.setting,
            Setting::Pages {
                illustrations: Illustrations::Rich,
                ..
            }
        )
    }
}

fn bareme_rows(catalog: &Catalog) -> Option<(Vec<BaremeRow>, time::Date)> {
    let schedule = catalog.schedule_at(OffsetDateTime::now_utc())?;
    let one = Quantity::new(1)?;
    let cost = |plan: &Plan, creation: Creation| -> Result<i64, String> {
        quote(
            schedule,
            plan,
            &catalog.plans,
            &Request {
                creation,
                quantity: one,
            },
        )
        .map(|q| q.unit)
        .map_err(|r| messages::refusal(&r))
    };
    // Tier bounds of a type, across every plan's rules.
    let bounds = |t: CreationType| -> Vec<u16> {
        let mut bounds: Vec<u16> = catalog
            .plans
            .iter()
            .flat_map(|p| schedule.rules_for(&p.id, t))
            .filter_map(|r| match r {
                RuleKind::Tier { up_to: Some(s), .. } => Some(s),
                _ => None,
            })
            .collect();
        bounds.sort_unstable();
        bounds.dedup();
        bounds
    };
    let mut rows = Vec::new();
    for four_k in [false, true] {
        for seconds in bounds(CreationType::Video) {
            let resolution = if four_k {
                Resolution::FourK
            } else {
                Resolution::Hd
            };
            let creation = Creation::Video {
                seconds,
                format: VideoFormat::Landscape,
                resolution,
            };
            rows.push(BaremeRow {
                creation: CreationType::Video,
                setting: Setting::UpTo { seconds, four_k },
                costs: catalog.plans.iter().map(|p| cost(p, creation)).collect(),
            });
        }
    }
    for four_k in [false, true] {
        let resolution = if four_k {
            Resolution::FourK
        } else {
            Resolution::Hd
        };
        let creation = Creation::Image {
            format: ImageFormat::Landscape,
            resolution,
        };
        rows.push(BaremeRow {
            creation: CreationType::Image,
            setting: Setting::Image { four_k },
            costs: catalog.plans.iter().map(|p| cost(p, creation)).collect(),
        });
    }
    for seconds in bounds(CreationType::Music) {
        rows.push(BaremeRow {
            creation: CreationType::Music,
            setting: Setting::UpTo {
                seconds,
                four_k: false,
            },
            costs: catalog
                .plans
                .iter()
                .map(|p| cost(p, Creation::Music { seconds }))
                .collect(),
        });
    }
    for illustrations in [Illustrations::Simple, Illustrations::Rich] {
        let pages = 10;
        let percents = catalog
            .plans
            .iter()
            .map(|p| {
                schedule
                    .rules_for(&p.id, CreationType::MiniBook)
                    .into_iter()
                    .find_map(|r| match r {
                        RuleKind::PerPage {
                            illustrations: i,
                            percent,
                        } if i == illustrations => Some(percent),
                        _ => None,
                    })
                    .unwrap_or(0)
            })
            .collect();
        rows.push(BaremeRow {
            creation: CreationType::MiniBook,
            setting: Setting::Pages {
                pages,
                illustrations,
                percents,
            },
            costs: catalog
                .plans
                .iter()
                .map(|p| {
                    cost(
                        p,
                        Creation::MiniBook {
                            pages,
                            illustrations,
                        },
                    )
                })
                .collect(),
        });
    }
    Some((rows, schedule.effective_from.date()))
}

pub(super) fn live_table(table: LiveTable, catalog: &Catalog) -> Result<String, PageError> {
    Ok(match table {
        LiveTable::Bareme => match bareme_rows(catalog) {
            Some((rows, since)) => BaremeTable {
                plans: &catalog.plans,
                rows,
                since,
            }
            .render()?,
            None => String::new(),
        },
        LiveTable::Plans => PlansTable {
            plans: &catalog.plans,
        }
        .render()?,
        LiveTable::Packs => PacksTable {
            packs: &catalog.packs,
        }
        .render()?,
    })
}
