// The call taker's live type suggestion: a mirror of adapters/hotline.py RULES.
// The server classifies again when the call is taken; its answer is the one
// that counts and the form shows it. Keep the two lists in step.

// [rule, category, priority, confidence, keywords]; the first rule with a keyword
// in the narrative wins (specific before general).
const RULES = [
  ["gas", "gas_leak", 2, 0.75, ["gas odor", "gas-odor", "gas leak", "smell of gas", "燃气", "漏气", "煤气", "天然气"]],
  ["hazmat", "hazmat", 1, 0.7, ["hazmat", "chemical", "hazardous material", "化学品", "危化品", "泄漏"]],
  ["crash", "traffic", 2, 0.75, ["vehicle accident", "collision", "crash", "pile-up", "车祸", "追尾", "相撞", "翻车"]],
  ["fire", "fire", 2, 0.7, ["fire", "smoke", "burning", "flames", "着火", "火灾", "冒烟", "起火"]],
  ["flood", "flood", 3, 0.7, ["flood", "water on road", "underpass", "积水", "内涝", "淹"]],
  ["medical", "medical", 2, 0.7, ["ems", "cardiac", "unconscious", "not breathing", "respiratory", "stroke",
    "seizure", "bleeding", "hemorrhag", "fall victim", "overdose", "晕倒", "心脏", "急救", "昏迷", "呼吸困难"]],
  ["structure", "structural", 2, 0.6, ["collapse", "building crack", "坍塌", "倒塌"]],
  ["outage", "utility_outage", 4, 0.6, ["power outage", "wires down", "停电", "断电"]],
  ["crime", "crime", 3, 0.6, ["robbery", "assault", "fight", "burglary", "shots", "抢劫", "打架", "盗窃"]],
  ["road", "traffic", 4, 0.5, ["traffic", "disabled vehicle", "road obstruction", "hazardous road", "堵车"]],
];

/** {category, priority, confidence, rule, matched} for a narrative, as the hotline adapter would. */
export function classify(narrative) {
  const text = narrative.toLowerCase();
  for (const [rule, category, priority, confidence, keywords] of RULES) {
    for (const keyword of keywords) {
      if (text.includes(keyword)) return { category, priority, confidence, rule, matched: keyword };
    }
  }
  return { category: "other", priority: 4, confidence: 0.3, rule: "none", matched: null };
}
