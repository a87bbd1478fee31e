// The call taker's live type suggestion, with the catalogue's hotline rules as the
// welcome carries them (setRules): the same rules, in the same order, as
// adapters/hotline.py. The server classifies again when the call is taken; its
// answer is the one that counts and the form shows it.

// [{rule, category, priority, confidence, keywords}]; the first rule with a keyword
// in the narrative wins (specific before general).
const RULES = [];

/** Take the catalogue's hotline rules from the welcome, in the order they are tried. */
export function setRules(rules) {
  RULES.splice(0, RULES.length, ...(rules || []));
}

/** {category, priority, confidence, rule, matched} for a narrative, as the hotline adapter would. */
export function classify(narrative) {
  const text = narrative.toLowerCase();
  for (const { rule, category, priority, confidence, keywords } of RULES) {
    for (const keyword of keywords) {
      if (text.includes(keyword)) return { category, priority, confidence, rule, matched: keyword };
    }
  }
  return { category: "other", priority: 4, confidence: 0.3, rule: "none", matched: null };
}
