//! How the domain's types are stored: the text vocabularies (`Role`, `SubscriptionStatus`,
//! `TokenPurpose`) as `text` columns, checked when read (an unknown value fails the query rather
//! than becoming a default), and `Cents` / `Credits` as `bigint`. The impls live here so that the
//! domain stays free of sqlx.

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, PgValueRef};
use sqlx::{Decode, Encode, Postgres, Type};

use crate::domain::account::{Role, SubscriptionStatus, TokenPurpose};
use crate::domain::billing::OrderState;
use crate::domain::ledger::{BucketSource, EntryKind, HoldState};
use crate::domain::money::{Cents, Credits};

macro_rules! text_column {
    ($name:ty) => {
        impl Type<Postgres> for $name {
            fn type_info() -> PgTypeInfo {
                <str as Type<Postgres>>::type_info()
            }

            fn compatible(ty: &PgTypeInfo) -> bool {
                <str as Type<Postgres>>::compatible(ty)
            }
        }

        impl Encode<'_, Postgres> for $name {
            fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
                <&str as Encode<Postgres>>::encode(self.as_str(), buf)
            }
        }

        impl<'r> Decode<'r, Postgres> for $name {
            fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
                let text = <&str as Decode<Postgres>>::decode(value)?;
                Ok(<$name>::parse(text)?)
            }
        }
    };
}

text_column!(Role);
text_column!(SubscriptionStatus);
text_column!(TokenPurpose);
text_column!(BucketSource);
text_column!(EntryKind);
text_column!(HoldState);
text_column!(OrderState);

macro_rules! bigint_column {
    ($name:ident) => {
        impl Type<Postgres> for $name {
            fn type_info() -> PgTypeInfo {
                <i64 as Type<Postgres>>::type_info()
            }

            fn compatible(ty: &PgTypeInfo) -> bool {
                <i64 as Type<Postgres>>::compatible(ty)
            }
        }

        impl Encode<'_, Postgres> for $name {
            fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
                <i64 as Encode<Postgres>>::encode_by_ref(&self.0, buf)
            }
        }

        impl<'r> Decode<'r, Postgres> for $name {
            fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
                Ok($name(<i64 as Decode<Postgres>>::decode(value)?))
            }
        }
    };
}

bigint_column!(Cents);
bigint_column!(Credits);
