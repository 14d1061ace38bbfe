//! Languages and translated texts. Danish first, then Swedish and English (GLOSSARY.md).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Lang {
    #[default]
    Da,
    Sv,
    En,
}

impl Lang {
    /// Picks the first supported language of an `Accept-Language`-style list; Danish otherwise.
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        header
            .split(',')
            .map(|part| part.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
            .find_map(|tag| match tag.split('-').next().unwrap_or("") {
                "da" => Some(Lang::Da),
                "sv" => Some(Lang::Sv),
                "en" => Some(Lang::En),
                _ => None,
            })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Da => "da",
            Lang::Sv => "sv",
            Lang::En => "en",
        }
    }
}

/// One text in the three languages. Swedish and English fall back to Danish when left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Texts {
    pub da: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sv: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub en: Option<String>,
}

impl Texts {
    pub fn get(&self, lang: Lang) -> &str {
        match lang {
            Lang::Da => &self.da,
            Lang::Sv => self.sv.as_deref().unwrap_or(&self.da),
            Lang::En => self.en.as_deref().unwrap_or(&self.da),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_first_supported_language() {
        assert_eq!(
            Lang::from_accept_language("de-DE, sv-SE;q=0.8, en"),
            Some(Lang::Sv)
        );
        assert_eq!(Lang::from_accept_language("EN-gb"), Some(Lang::En));
        assert_eq!(Lang::from_accept_language("fr"), None);
    }
}
