//! The live tables of the guides (`{{< bareme >}}`, `plans`, `packs`) and their inline figures
//! (`{{< prix eglise >}}`, `{{< cout type=video duree=10 >}}`…): priced by the same `quote` as
//! the simulator, from the catalog in force.

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

/// A plan's credits per mini-book page, in hundredths (80 for 0,8), on `schedule`.
fn per_page_percent(schedule: &Schedule, plan: &str, illustrations: Illustrations) -> Option<i64> {
    schedule
        .rules_for(plan, CreationType::MiniBook)
        .into_iter()
        .find_map(|r| match r {
            RuleKind::PerPage {
                illustrations: i,
                percent,
            } if i == illustrations => Some(percent),
            _ => None,
        })
}

fn bareme_rows(catalog: &Catalog, at: OffsetDateTime) -> Option<(Vec<BaremeRow>, time::Date)> {
    let schedule = catalog.schedule_at(at)?;
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
            .map(|p| per_page_percent(schedule, &p.id, illustrations).unwrap_or(0))
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
    // The day it took effect in Paris (a version starts at midnight there: 23:00 UTC the day before).
    Some((
        rows,
        crate::domain::format::paris(schedule.effective_from).date(),
    ))
}

pub(crate) fn live_table(
    table: LiveTable,
    catalog: &Catalog,
    at: OffsetDateTime,
) -> Result<String, PageError> {
    Ok(match table {
        LiveTable::Bareme => match bareme_rows(catalog, at) {
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

// ---------------------------------------------------------------- inline figures

/// The text of an inline figure on the catalog in force at `at` (plain text, not yet
/// HTML-escaped), or `None` when the catalog has no such plan or pack or the schedule refuses
/// the request.
pub fn figure_text(figure: &Figure, catalog: &Catalog, at: OffsetDateTime) -> Option<String> {
    use crate::domain::format::thousands;
    match figure {
        Figure::Field { field, id } => {
            if let Some(plan) = catalog.plan(id) {
                let price = plan.price_cents;
                return Some(match field {
                    FigureField::Price => price.euros(),
                    FigureField::Net => Cents(price.0 - vat_included(price).0).euros(),
                    FigureField::Vat => vat_included(price).euros(),
                    FigureField::Credits => thousands(plan.credits_per_period),
                    FigureField::Rollover => thousands(plan.rollover_cap),
                    FigureField::Daily => thousands(plan.daily_generations),
                    FigureField::Monthly => thousands(plan.monthly_credits),
                    FigureField::Concurrent => thousands(plan.concurrent_renders),
                    FigureField::Name => plan.name.clone(),
                });
            }
            let pack = catalog.packs.iter().find(|p| p.id == *id)?;
            let price = pack.price_cents;
            match field {
                FigureField::Price => Some(price.euros()),
                FigureField::Net => Some(Cents(price.0 - pack.vat_cents().0).euros()),
                FigureField::Vat => Some(pack.vat_cents().euros()),
                FigureField::Credits => Some(pack.credits.french()),
                FigureField::Name => Some(pack.name.clone()),
                FigureField::Rollover
                | FigureField::Daily
                | FigureField::Monthly
                | FigureField::Concurrent => None,
            }
        }
        Figure::Cost { params } => {
            let get = |key: &str| {
                params
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.clone())
            };
            let raw = RawSimulation {
                creation_type: get("type"),
                duree: get("duree"),
                format: get("format"),
                resolution: get("resolution"),
                pages: get("pages"),
                illustrations: get("illustrations"),
                quantite: None,
                plan: get("plan"),
                prompt: None,
            };
            let simulation = raw
                .parse(&catalog.ranges, &catalog.plan_ids(), catalog.default_plan())
                .ok()?;
            let plan = catalog.plan(&simulation.plan)?;
            let schedule = catalog.schedule_at(at)?;
            quote(schedule, plan, &catalog.plans, &simulation.request)
                .ok()
                .map(|q| thousands(q.unit))
        }
        Figure::PerPage { params } => {
            let get = |key: &str| {
                params
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.as_str())
            };
            let illustrations = match get("illustrations").unwrap_or("simples") {
                "simples" => Illustrations::Simple,
                "riches" => Illustrations::Rich,
                _ => return None,
            };
            let plan = catalog.plan(get("plan").unwrap_or(catalog.default_plan()))?;
            let schedule = catalog.schedule_at(at)?;
            let percent = per_page_percent(schedule, &plan.id, illustrations)?;
            // « 1 », « 0,8 », « 0,75 »: a decimal comma, no trailing zero.
            let whole = percent / 100;
            let cents = percent % 100;
            Some(match cents {
                0 => whole.to_string(),
                c if c % 10 == 0 => format!("{whole},{}", c / 10),
                c => format!("{whole},{c:02}"),
            })
        }
    }
}

/// A guide's rendered HTML with its figures filled in; an unknown one reads « ? » and is logged
/// (the content test `every_figure_of_the_guides_resolves` keeps the seeded catalog free of them).
pub(crate) fn with_figures(
    html: &str,
    guide: &Guide,
    catalog: &Catalog,
    at: OffsetDateTime,
) -> String {
    crate::content::guide::fill_figures(html, |i| {
        match guide
            .figures
            .get(i)
            .and_then(|f| figure_text(f, catalog, at))
        {
            Some(mut text) => {
                if guide.credits_after.get(i) == Some(&true) {
                    text.push_str(credits_word(&text));
                }
                askama::filters::escape(&text, askama::filters::Html)
                    .map(|e| e.to_string())
                    .unwrap_or_default()
            }
            None => {
                tracing::warn!(guide = %guide.slug, figure = ?guide.figures.get(i), "a guide's figure is not in the catalog");
                "?".to_owned()
            }
        }
    })
}

/// « crédit » after a figure under 2 (« 1 crédit », « 0,8 crédit »), « crédits » from 2 on, as
/// French agrees it.
fn credits_word(figure: &str) -> &'static str {
    // The whole part decides (« 1,5 crédit »); thousands separators are not digits.
    let whole: String = figure
        .split(',')
        .next()
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    match whole.parse::<u64>() {
        Ok(0 | 1) => " crédit",
        _ => " crédits",
    }
}

#[cfg(test)]
mod tests {
    use super::credits_word;

    #[test]
    fn the_credits_word_agrees_with_its_figure() {
        assert_eq!(credits_word("1"), " crédit");
        assert_eq!(credits_word("0,8"), " crédit");
        assert_eq!(credits_word("2"), " crédits");
        assert_eq!(credits_word("1\u{202f}000"), " crédits");
    }
}
