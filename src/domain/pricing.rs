//! The price schedule (barème) and pricing: (schedule, plan, request) → cost or a typed refusal.
//!
//! Pure: the schedule and the plan are arguments, read from the database by the caller. Rates
//! are integers (`percent` of a credit per page), so no floating point touches a price.

use serde::Serialize;
use time::OffsetDateTime;

use super::catalog::{Plan, TypeRange};
use super::limits::Refusal;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum CreationType {
    #[serde(rename = "video")]
    Video,
    #[serde(rename = "image")]
    Image,
    #[serde(rename = "musique")]
    Music,
    #[serde(rename = "mini-livre")]
    MiniBook,
}

impl CreationType {
    pub const ALL: [CreationType; 4] = [Self::Video, Self::Image, Self::Music, Self::MiniBook];

    /// The value used in URLs and in the database.
    pub fn id(self) -> &'static str {
        match self {
            Self::Video => "video",
            Self::Image => "image",
            Self::Music => "musique",
            Self::MiniBook => "mini-livre",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim().to_lowercase();
        Self::ALL.into_iter().find(|t| t.id() == raw)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum VideoFormat {
    Landscape,
    Portrait,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ImageFormat {
    Landscape,
    Portrait,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Resolution {
    Hd,
    FourK,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Illustrations {
    Simple,
    Rich,
}

impl Illustrations {
    pub fn id(self) -> &'static str {
        match self {
            Self::Simple => "simples",
            Self::Rich => "riches",
        }
    }
}

/// One render (or one mini-book batch), fully specified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Creation {
    Video {
        seconds: u16,
        format: VideoFormat,
        resolution: Resolution,
    },
    Image {
        format: ImageFormat,
        resolution: Resolution,
    },
    Music {
        seconds: u16,
    },
    MiniBook {
        pages: u16,
        illustrations: Illustrations,
    },
}

impl Creation {
    pub fn creation_type(&self) -> CreationType {
        match self {
            Self::Video { .. } => CreationType::Video,
            Self::Image { .. } => CreationType::Image,
            Self::Music { .. } => CreationType::Music,
            Self::MiniBook { .. } => CreationType::MiniBook,
        }
    }

    pub fn resolution(&self) -> Resolution {
        match self {
            Self::Video { resolution, .. } | Self::Image { resolution, .. } => *resolution,
            _ => Resolution::Hd,
        }
    }
}

/// How many renders (or batches) of the same creation: 1 to 500.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Quantity(u16);

impl Quantity {
    pub const MIN: u16 = 1;
    pub const MAX: u16 = 500;

    pub fn new(n: u16) -> Option<Self> {
        (Self::MIN..=Self::MAX).contains(&n).then_some(Self(n))
    }

    pub fn get(self) -> u16 {
        self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Request {
    pub creation: Creation,
    pub quantity: Quantity,
}

/// A rule of a schedule version; `plan: None` applies to every plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub plan: Option<String>,
    pub creation_type: CreationType,
    pub kind: RuleKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    /// `credits` for a duration up to `up_to` seconds; `None` covers any (images).
    Tier { up_to: Option<u16>, credits: i64 },
    /// Added per render in 4K.
    Surcharge4k { credits: i64 },
    /// `percent` of a credit per page, rounded up per batch.
    PerPage {
        illustrations: Illustrations,
        percent: i64,
    },
}

impl RuleKind {
    /// Rules with the same key replace one another (a plan's override replaces the general rule).
    fn key(&self) -> (u8, Option<u16>, Option<Illustrations>) {
        match *self {
            Self::Tier { up_to, .. } => (0, up_to, None),
            Self::Surcharge4k { .. } => (1, None, None),
            Self::PerPage { illustrations, .. } => (2, None, Some(illustrations)),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Schedule {
    pub id: i64,
    pub effective_from: OffsetDateTime,
    pub rules: Vec<Rule>,
}

impl Schedule {
    /// The version in force at `now`: the latest whose date has come; of two with the same
    /// date, the one published last (a correction).
    pub fn in_force(versions: &[Schedule], now: OffsetDateTime) -> Option<&Schedule> {
        versions
            .iter()
            .filter(|s| s.effective_from <= now)
            .max_by_key(|s| (s.effective_from, s.id))
    }

    /// The rules that apply to `plan` for `creation_type`, overrides replacing general rules.
    /// In the order of their keys (`RuleKind::key`). A type has a handful of rules: a vector
    /// searched in place costs less than a map (this runs for each plan of each simulation).
    pub fn rules_for(&self, plan: &str, creation_type: CreationType) -> Vec<RuleKind> {
        let mut rules: Vec<RuleKind> = Vec::with_capacity(4);
        let of_type = self
            .rules
            .iter()
            .filter(|r| r.creation_type == creation_type);
        let general = of_type.clone().filter(|r| r.plan.is_none());
        for rule in general.chain(of_type.filter(|r| r.plan.as_deref() == Some(plan))) {
            match rules.iter_mut().find(|k| k.key() == rule.kind.key()) {
                Some(kept) => *kept = rule.kind,
                None => rules.push(rule.kind),
            }
        }
        rules.sort_by_key(RuleKind::key);
        rules
    }
}

/// A line of the breakdown of one render's cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum QuoteLine {
    /// The base price of the tier covering `seconds` (up to `up_to`).
    Tier {
        up_to: Option<u16>,
        credits: i64,
    },
    Surcharge4k {
        credits: i64,
    },
    /// `pages` × `percent` % rounded up.
    Pages {
        pages: u16,
        percent: i64,
        illustrations: Illustrations,
        credits: i64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quote {
    pub unit: i64,
    pub total: i64,
    pub lines: Vec<QuoteLine>,
}

/// Prices `request` on `plan` with `schedule`. `plans` names the way out of a plan refusal.
pub fn quote(
    schedule: &Schedule,
    plan: &Plan,
    plans: &[Plan],
    request: &Request,
) -> Result<Quote, Refusal> {
    let creation = request.creation;
    if creation.resolution() == Resolution::FourK && !plan.allows_4k {
        let available_in = plans.iter().find(|p| p.allows_4k).map(|p| p.name.clone());
        return Err(Refusal::FourKNotInPlan { available_in });
    }
    let rules = schedule.rules_for(&plan.id, creation.creation_type());
    let mut lines = Vec::new();
    match creation {
        Creation::Video { seconds, .. } | Creation::Music { seconds } => {
            lines.push(tier(&rules, Some(seconds))?)
        }
        Creation::Image { .. } => lines.push(tier(&rules, None)?),
        Creation::MiniBook {
            pages,
            illustrations,
        } => {
            let percent = rules
                .iter()
                .find_map(|r| match *r {
                    RuleKind::PerPage {
                        illustrations: i,
                        percent,
                    } if i == illustrations => Some(percent),
                    _ => None,
                })
                .ok_or(Refusal::NotPriced)?;
            // Rounded up per batch; both factors are non-negative (CHECK constraints, u16).
            let credits = (i64::from(pages) * percent + 99) / 100;
            lines.push(QuoteLine::Pages {
                pages,
                percent,
                illustrations,
                credits,
            });
        }
    }
    if creation.resolution() == Resolution::FourK {
        let credits = rules
            .iter()
            .find_map(|r| match *r {
                RuleKind::Surcharge4k { credits } => Some(credits),
                _ => None,
            })
            .ok_or(Refusal::NotPriced)?;
        lines.push(QuoteLine::Surcharge4k { credits });
    }
    let unit: i64 = lines
        .iter()
        .map(|line| match *line {
            QuoteLine::Tier { credits, .. }
            | QuoteLine::Surcharge4k { credits }
            | QuoteLine::Pages { credits, .. } => credits,
        })
        .sum();
    Ok(Quote {
        unit,
        total: unit * i64::from(request.quantity.get()),
        lines,
    })
}

/// The cheapest tier covering `seconds` (`None`: the tier for any duration).
fn tier(rules: &[RuleKind], seconds: Option<u16>) -> Result<QuoteLine, Refusal> {
    rules
        .iter()
        .filter_map(|r| match *r {
            RuleKind::Tier { up_to, credits } => Some((up_to, credits)),
            _ => None,
        })
        .filter(|(up_to, _)| match (seconds, up_to) {
            (Some(s), Some(max)) => s <= *max,
            (_, None) => true,
            (None, Some(_)) => false,
        })
        .min_by_key(|(up_to, _)| up_to.unwrap_or(u16::MAX))
        .map(|(up_to, credits)| QuoteLine::Tier { up_to, credits })
        .ok_or(Refusal::NotPriced)
}

/// The accepted range of `creation_type` in `ranges` (None when the type has no such parameter).
pub fn range_of(ranges: &[TypeRange], creation_type: CreationType) -> (Option<u16>, Option<u16>) {
    ranges
        .iter()
        .find(|r| r.creation_type == creation_type)
        .map(|r| (r.min, r.max))
        .unwrap_or((None, None))
}

/// A request's parameters, only those that apply, normalised (with the quantity).
pub fn request_pairs(request: &Request) -> Vec<(&'static str, String)> {
    let mut pairs: Vec<(&str, String)> =
        vec![("type", request.creation.creation_type().id().to_owned())];
    let resolution = |r: Resolution| if r == Resolution::FourK { "4k" } else { "hd" }.to_owned();
    match request.creation {
        Creation::Video {
            seconds,
            format,
            resolution: r,
        } => {
            pairs.push(("duree", seconds.to_string()));
            pairs.push((
                "format",
                if format == VideoFormat::Portrait {
                    "9:16"
                } else {
                    "16:9"
                }
                .to_owned(),
            ));
            pairs.push(("resolution", resolution(r)));
        }
        Creation::Image {
            format,
            resolution: r,
        } => {
            pairs.push((
                "format",
                if format == ImageFormat::Portrait {
                    "1080x1350"
                } else {
                    "1920x1080"
                }
                .to_owned(),
            ));
            pairs.push(("resolution", resolution(r)));
        }
        Creation::Music { seconds } => pairs.push(("duree", seconds.to_string())),
        Creation::MiniBook {
            pages,
            illustrations,
        } => {
            pairs.push(("pages", pages.to_string()));
            pairs.push(("illustrations", illustrations.id().to_owned()));
        }
    }
    pairs.push(("quantite", request.quantity.get().to_string()));
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(id: &str, name: &str, allows_4k: bool) -> Plan {
        Plan {
            id: id.into(),
            name: name.into(),
            price_cents: crate::domain::money::Cents(0),
            credits_per_period: 30,
            rollover_cap: 10,
            features: vec![],
            allows_4k,
            allows_api: allows_4k,
            daily_generations: 15,
            monthly_credits: 90,
            concurrent_renders: 1,
        }
    }

    fn plans() -> Vec<Plan> {
        vec![
            plan("eglise", "Plan Église", false),
            plan("reseau", "Plan Réseau", true),
        ]
    }

    /// The seeded schedule of PRODUCT.md, as the migration writes it.
    fn schedule() -> Schedule {
        use CreationType::*;
        let general = |creation_type, kind| Rule {
            plan: None,
            creation_type,
            kind,
        };
        let tier = |up_to: Option<u16>, credits| RuleKind::Tier { up_to, credits };
        Schedule {
            id: 1,
            effective_from: OffsetDateTime::UNIX_EPOCH,
            rules: vec![
                general(Video, tier(Some(5), 2)),
                general(Video, tier(Some(10), 3)),
                general(Video, tier(Some(15), 4)),
                general(Video, RuleKind::Surcharge4k { credits: 2 }),
                general(Image, tier(None, 1)),
                general(Image, RuleKind::Surcharge4k { credits: 1 }),
                general(Music, tier(Some(30), 1)),
                general(Music, tier(Some(60), 2)),
                general(Music, tier(Some(90), 3)),
                general(
                    MiniBook,
                    RuleKind::PerPage {
                        illustrations: Illustrations::Simple,
                        percent: 50,
                    },
                ),
                general(
                    MiniBook,
                    RuleKind::PerPage {
                        illustrations: Illustrations::Rich,
                        percent: 100,
                    },
                ),
                Rule {
                    plan: Some("reseau".into()),
                    creation_type: MiniBook,
                    kind: RuleKind::PerPage {
                        illustrations: Illustrations::Rich,
                        percent: 80,
                    },
                },
            ],
        }
    }

    fn price(plan_id: &str, creation: Creation, quantity: u16) -> Result<Quote, Refusal> {
        let plans = plans();
        let plan = plans.iter().find(|p| p.id == plan_id).unwrap();
        quote(
            &schedule(),
            plan,
            &plans,
            &Request {
                creation,
                quantity: Quantity::new(quantity).unwrap(),
            },
        )
    }

    fn unit(plan_id: &str, creation: Creation) -> i64 {
        price(plan_id, creation, 1).unwrap().unit
    }

    fn video(seconds: u16, resolution: Resolution) -> Creation {
        Creation::Video {
            seconds,
            format: VideoFormat::Landscape,
            resolution,
        }
    }

    fn book(pages: u16, illustrations: Illustrations) -> Creation {
        Creation::MiniBook {
            pages,
            illustrations,
        }
    }

    #[test]
    fn video_tiers_hold_on_both_sides_of_each_boundary() {
        for (seconds, credits) in [(5, 2), (6, 3), (10, 3), (11, 4), (15, 4)] {
            assert_eq!(
                unit("eglise", video(seconds, Resolution::Hd)),
                credits,
                "{seconds} s"
            );
        }
    }

    #[test]
    fn four_k_adds_two_credits_to_a_video_on_plan_reseau() {
        assert_eq!(unit("reseau", video(5, Resolution::FourK)), 4);
        assert_eq!(unit("reseau", video(15, Resolution::FourK)), 6);
    }

    #[test]
    fn four_k_on_plan_eglise_is_refused_with_the_way_out() {
        let refusal = price("eglise", video(10, Resolution::FourK), 1).unwrap_err();
        assert_eq!(
            refusal,
            Refusal::FourKNotInPlan {
                available_in: Some("Plan Réseau".into())
            }
        );
        assert_eq!(refusal.rule(), "plan_feature");
        let image = Creation::Image {
            format: ImageFormat::Landscape,
            resolution: Resolution::FourK,
        };
        assert!(matches!(
            price("eglise", image, 1),
            Err(Refusal::FourKNotInPlan { .. })
        ));
    }

    #[test]
    fn an_image_costs_one_credit_in_hd_and_two_in_4k() {
        for format in [ImageFormat::Landscape, ImageFormat::Portrait] {
            assert_eq!(
                unit(
                    "eglise",
                    Creation::Image {
                        format,
                        resolution: Resolution::Hd
                    }
                ),
                1
            );
            assert_eq!(
                unit(
                    "reseau",
                    Creation::Image {
                        format,
                        resolution: Resolution::Hd
                    }
                ),
                1
            );
            assert_eq!(
                unit(
                    "reseau",
                    Creation::Image {
                        format,
                        resolution: Resolution::FourK
                    }
                ),
                2
            );
        }
    }

    #[test]
    fn music_tiers_hold_on_both_sides_of_each_boundary() {
        for (seconds, credits) in [(30, 1), (31, 2), (60, 2), (61, 3), (90, 3)] {
            assert_eq!(
                unit("eglise", Creation::Music { seconds }),
                credits,
                "{seconds} s"
            );
        }
    }

    #[test]
    fn mini_books_cost_half_a_credit_per_simple_page_rounded_up() {
        for (pages, credits) in [(4, 2), (5, 3), (10, 5), (19, 10), (20, 10)] {
            assert_eq!(
                unit("eglise", book(pages, Illustrations::Simple)),
                credits,
                "{pages} pages"
            );
            assert_eq!(
                unit("reseau", book(pages, Illustrations::Simple)),
                credits,
                "{pages} pages"
            );
        }
    }

    #[test]
    fn the_reseau_override_applies_to_rich_mini_books() {
        assert_eq!(unit("eglise", book(10, Illustrations::Rich)), 10);
        assert_eq!(unit("reseau", book(10, Illustrations::Rich)), 8);
        assert_eq!(unit("reseau", book(4, Illustrations::Rich)), 4); // 3.2 rounds up
        assert_eq!(unit("reseau", book(20, Illustrations::Rich)), 16);
    }

    #[test]
    fn total_is_unit_times_quantity_from_1_to_500() {
        for quantity in [1, 2, 499, 500] {
            let q = price("eglise", video(10, Resolution::Hd), quantity).unwrap();
            assert_eq!(q.total, 3 * i64::from(quantity));
        }
        assert!(Quantity::new(0).is_none());
        assert!(Quantity::new(501).is_none());
    }

    #[test]
    fn every_valid_combination_has_a_price_and_cost_never_decreases_as_it_grows() {
        for plan in ["eglise", "reseau"] {
            let resolutions: &[Resolution] = if plan == "reseau" {
                &[Resolution::Hd, Resolution::FourK]
            } else {
                &[Resolution::Hd]
            };
            for &resolution in resolutions {
                let mut last = 0;
                for seconds in 5..=15 {
                    let cost = unit(plan, video(seconds, resolution));
                    assert!(cost >= last, "video {seconds} s");
                    last = cost;
                }
                if resolution == Resolution::FourK {
                    for seconds in 5..=15 {
                        assert!(
                            unit(plan, video(seconds, resolution))
                                > unit(plan, video(seconds, Resolution::Hd))
                        );
                    }
                }
            }
            let mut last = 0;
            for seconds in 30..=90 {
                let cost = unit(plan, Creation::Music { seconds });
                assert!(cost >= last && cost > 0, "music {seconds} s");
                last = cost;
            }
            for illustrations in [Illustrations::Simple, Illustrations::Rich] {
                let mut last = 0;
                for pages in 4..=20 {
                    let cost = unit(plan, book(pages, illustrations));
                    assert!(cost >= last && cost > 0, "{pages} pages");
                    last = cost;
                }
            }
            for pages in 4..=20 {
                assert!(
                    unit(plan, book(pages, Illustrations::Rich))
                        >= unit(plan, book(pages, Illustrations::Simple))
                );
            }
        }
    }

    #[test]
    fn the_version_in_force_is_the_latest_whose_date_has_come() {
        let mut old = schedule();
        old.id = 1;
        old.effective_from = OffsetDateTime::from_unix_timestamp(1_000).unwrap();
        let mut next = schedule();
        next.id = 2;
        next.effective_from = OffsetDateTime::from_unix_timestamp(2_000).unwrap();
        let versions = [old, next];
        let at = |t| {
            Schedule::in_force(&versions, OffsetDateTime::from_unix_timestamp(t).unwrap())
                .map(|s| s.id)
        };
        assert_eq!(at(999), None);
        assert_eq!(at(1_000), Some(1));
        assert_eq!(at(1_999), Some(1));
        assert_eq!(at(2_000), Some(2));
    }

    #[test]
    fn a_schedule_without_the_needed_rule_says_not_priced() {
        let empty = Schedule {
            id: 9,
            effective_from: OffsetDateTime::UNIX_EPOCH,
            rules: vec![],
        };
        let plans = plans();
        let request = Request {
            creation: Creation::Music { seconds: 40 },
            quantity: Quantity::new(1).unwrap(),
        };
        assert_eq!(
            quote(&empty, &plans[0], &plans, &request),
            Err(Refusal::NotPriced)
        );
    }
}
