//! Short French messages shared by pages and JSON answers. Rust picks the variant; the text lives
//! in `templates/messages/`, and askama's exhaustive `match` makes a variant without its
//! sentence a compile error.

use askama::Template;

use crate::domain::limits::Refusal;
use crate::domain::pricing::CreationType;
use crate::domain::prompt::{Advice, Category};
use crate::domain::simulation::FieldError;
use crate::services::passwords::Weakness;
use crate::web::aide::QueryProblem;
use crate::web::api_error::ApiErrorCode;
use crate::web::compte::FormError;
use crate::web::contact::ContactError;

#[derive(Template)]
#[template(path = "messages/field_error.txt")]
struct FieldErrorText<'a> {
    field: &'a str,
    error: &'a FieldError,
}

#[derive(Template)]
#[template(path = "messages/refusal.txt")]
struct RefusalText<'a> {
    refusal: &'a Refusal,
}

#[derive(Template)]
#[template(path = "messages/advice.txt")]
struct AdviceText<'a> {
    advice: &'a Advice,
}

#[derive(Template)]
#[template(path = "messages/category.txt")]
struct CategoryText {
    category: Category,
}

// Rendering these fixed texts cannot fail (no I/O, no fallible filter); the fallback keeps a
// page readable if it ever did.
fn render(template: impl Template) -> String {
    template.render().unwrap_or_else(|_| "Erreur".to_owned())
}

pub fn field_error(field: &str, error: &FieldError) -> String {
    render(FieldErrorText { field, error })
}

pub fn refusal(refusal: &Refusal) -> String {
    render(RefusalText { refusal })
}

pub fn advice(advice: &Advice) -> String {
    render(AdviceText { advice })
}

pub fn category(category: Category) -> String {
    render(CategoryText { category })
}

#[derive(Template)]
#[template(path = "messages/query_problem.txt")]
struct QueryProblemText<'a> {
    problem: &'a QueryProblem,
}

pub fn query_problem(problem: &QueryProblem) -> String {
    render(QueryProblemText { problem })
}

#[derive(Template)]
#[template(path = "messages/contact_error.txt")]
struct ContactErrorText<'a> {
    field: &'a str,
    error: ContactError,
}

pub fn contact_error(field: &str, error: ContactError) -> String {
    render(ContactErrorText { field, error })
}

#[derive(Template)]
#[template(path = "messages/account_error.txt")]
struct AccountErrorText<'a> {
    field: &'a str,
    error: FormError,
}

pub fn account_error(field: &str, error: FormError) -> String {
    render(AccountErrorText { field, error })
}

#[derive(Template)]
#[template(path = "messages/api_error.txt")]
struct ApiErrorText {
    error: ApiErrorCode,
}

pub fn api_error(error: ApiErrorCode) -> String {
    render(ApiErrorText { error })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::money::Credits;

    #[test]
    fn every_refusal_names_its_rule_and_the_way_out_in_french() {
        let cases = [
            (Refusal::Suspended, "abonnement est suspendu"),
            (
                Refusal::ApiNotInPlan {
                    available_in: Some("Plan Réseau".into()),
                },
                "L’API est réservée au Plan Réseau.",
            ),
            (
                Refusal::Prompt {
                    category: Category::DrugsDanger,
                },
                "catégorie exclue (drogues, abus d’alcool, tabac ou comportements dangereux)",
            ),
            (
                Refusal::Concurrency { allowed: 1 },
                "Attendez la fin d’un rendu en cours, puis relancez.",
            ),
            (Refusal::DailyCap { cap: 15 }, "reprenez demain"),
            (
                Refusal::MonthlyCap { cap: Credits(90) },
                "90 crédits par mois",
            ),
            (
                Refusal::Balance {
                    needed: Credits(4),
                    available: Credits(1),
                },
                "Il faut 4 crédits, il vous en reste 1.",
            ),
        ];
        for (case, expected) in cases {
            let text = refusal(&case);
            assert!(text.contains(expected), "{case:?}: {text}");
            assert!(
                !text.contains(" :"),
                "no-break space before the colon: {text}"
            );
        }
    }
}

#[derive(Template)]
#[template(path = "messages/api_input.txt")]
struct ApiInputText<'a> {
    problem: &'a str,
}

/// What is wrong with a request to the API beyond the simulator's fields (a header, the body,
/// a query parameter), by name.
pub fn api_input(problem: &str) -> String {
    render(ApiInputText { problem })
}
