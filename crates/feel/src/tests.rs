use serde_json::{json, Map, Value as Json};

use crate::{EvalError, Expression, Limits};

fn vars(value: Json) -> Map<String, Json> {
    value.as_object().cloned().unwrap_or_default()
}

#[track_caller]
fn eval(source: &str, variables: Json) -> Json {
    let expression = Expression::parse(source).unwrap_or_else(|e| panic!("{source}: {e}"));
    expression.evaluate(&vars(variables)).unwrap_or_else(|e| panic!("{source}: {e}"))
}

#[track_caller]
fn parse_error(source: &str) -> String {
    Expression::parse(source).expect_err(source).message
}

#[test]
fn arithmetic_is_decimal() {
    assert_eq!(eval("0.1 + 0.2 = 0.3", json!({})), json!(true));
    assert_eq!(eval("amount * 2", json!({"amount": 20})), json!(40));
    assert_eq!(eval("7 / 2", json!({})), json!(3.5));
    assert_eq!(eval("2 ** 10", json!({})), json!(1024));
    assert_eq!(eval("-x + 1", json!({"x": 3})), json!(-2));
    assert_eq!(eval("1 / 0", json!({})), json!(null));
}

#[test]
fn comparisons_and_three_valued_logic() {
    assert_eq!(eval("amount > 100", json!({"amount": 150})), json!(true));
    assert_eq!(eval("amount > 100", json!({"amount": 50})), json!(false));
    assert_eq!(eval("missing > 100", json!({})), json!(null));
    assert_eq!(eval("null and false", json!({})), json!(false));
    assert_eq!(eval("null and true", json!({})), json!(null));
    assert_eq!(eval("null or true", json!({})), json!(true));
    assert_eq!(eval("x = null", json!({})), json!(true));
    assert_eq!(eval("\"a\" = 1", json!({})), json!(null));
    assert_eq!(eval("x != \"b\"", json!({"x": "a"})), json!(true));
    assert_eq!(eval("5 between 1 and 10", json!({})), json!(true));
    assert_eq!(eval("x in [1, 2, 3]", json!({"x": 2})), json!(true));
    assert_eq!(eval("x in [1..3)", json!({"x": 3})), json!(false));
    assert_eq!(eval("x in > 2", json!({"x": 3})), json!(true));
}

#[test]
fn strings_lists_and_contexts() {
    assert_eq!(eval("\"PT\" + string(hours) + \"H\"", json!({"hours": 2})), json!("PT2H"));
    assert_eq!(eval("upper case(name)", json!({"name": "ada"})), json!("ADA"));
    assert_eq!(eval("string length(\"héllo\")", json!({})), json!(5));
    assert_eq!(eval("substring(\"foobar\", 3)", json!({})), json!("obar"));
    assert_eq!(eval("substring(\"foobar\", -2, 1)", json!({})), json!("a"));
    assert_eq!(eval("starts with(\"foobar\", \"foo\")", json!({})), json!(true));
    assert_eq!(eval("items[1]", json!({"items": [10, 20]})), json!(10));
    assert_eq!(eval("items[-1]", json!({"items": [10, 20]})), json!(20));
    assert_eq!(eval("items[item > 15]", json!({"items": [10, 20, 30]})), json!([20, 30]));
    assert_eq!(eval("orders[price > 5].id", json!({"orders": [{"id": 1, "price": 3}, {"id": 2, "price": 9}]})), json!([2]));
    assert_eq!(eval("order.customer.name", json!({"order": {"customer": {"name": "Ada"}}})), json!("Ada"));
    assert_eq!(eval("{a: 1, b: a + 1}", json!({})), json!({"a": 1, "b": 2}));
    assert_eq!(eval("count(items)", json!({"items": [1, 2, 3]})), json!(3));
    assert_eq!(eval("sum(items)", json!({"items": [1, 2, 3.5]})), json!(6.5));
    assert_eq!(eval("max(3, 9, 4)", json!({})), json!(9));
    assert_eq!(eval("list contains(items, 2)", json!({"items": [1, 2]})), json!(true));
    assert_eq!(eval("append([1], 2, 3)", json!({})), json!([1, 2, 3]));
    assert_eq!(eval("distinct values([1, 2, 1])", json!({})), json!([1, 2]));
    assert_eq!(eval("string join([\"a\", \"b\"], \", \")", json!({})), json!("a, b"));
    assert_eq!(eval("is defined(x)", json!({"x": null})), json!(true));
    assert_eq!(eval("is defined(y)", json!({})), json!(false));
    assert_eq!(eval("get or else(y, 5)", json!({})), json!(5));
    assert_eq!(eval("decimal(1.125, 2)", json!({})), json!(1.12));
    assert_eq!(eval("modulo(-5, 3)", json!({})), json!(1));
}

#[test]
fn iteration_and_conditionals() {
    assert_eq!(eval("for x in items return x * 10", json!({"items": [1, 2, 3]})), json!([10, 20, 30]));
    assert_eq!(eval("for i in 1..3 return i", json!({})), json!([1, 2, 3]));
    assert_eq!(eval("for i in 3..1 return i", json!({})), json!([3, 2, 1]));
    assert_eq!(eval("for i in 1..4 return if i = 1 then 1 else partial[-1] * 2", json!({})), json!([1, 2, 4, 8]));
    assert_eq!(eval("some x in [1, 5] satisfies x > 4", json!({})), json!(true));
    assert_eq!(eval("every x in [1, 5] satisfies x > 4", json!({})), json!(false));
    assert_eq!(eval("if amount > 10 then \"big\" else \"small\"", json!({"amount": 50})), json!("big"));
    assert_eq!(eval("if missing then 1 else 2", json!({})), json!(2));
}

#[test]
fn dates_and_durations() {
    assert_eq!(eval("duration(\"PT\" + string(hours) + \"H\")", json!({"hours": 2})), json!("PT2H"));
    assert_eq!(eval("date and time(\"2026-01-01T10:00:00Z\") + duration(\"PT1H\")", json!({})), json!("2026-01-01T11:00:00Z"));
    assert_eq!(eval("date(\"2026-03-01\") > date(\"2026-02-28\")", json!({})), json!(true));
    assert_eq!(eval("date(\"2026-03-01\").month", json!({})), json!(3));
    assert_eq!(eval("duration(\"PT2H\") > duration(\"PT90M\")", json!({})), json!(true));
    assert_eq!(eval("day of week(date(\"2026-11-21\"))", json!({})), json!("Saturday"));
}

#[test]
fn free_names_are_the_variables_read() {
    let expression = Expression::parse("for x in items return x + offset + items[item > 1][1]").unwrap();
    assert_eq!(expression.names(), ["items", "offset"]);
}

#[test]
fn parse_errors_name_the_problem() {
    assert!(parse_error("amount >").contains("ended"), "{}", parse_error("amount >"));
    assert!(parse_error("now(1)").contains("takes no arguments"));
    assert!(parse_error("frobnicate(1)").contains("unknown function 'frobnicate'"));
    assert!(parse_error("count(1, 2)").contains("takes 1 arguments"));
    // A function is a value for other expressions, never a variable.
    let function = Expression::parse("function(x) x").unwrap();
    assert!(matches!(function.evaluate(&Map::new()), Err(EvalError::NotJson(_))));
    assert_eq!(eval("(function(a, b) a * b)(6, 7)", json!({})), json!(42));
    assert_eq!(eval("{double: function(n) n * 2, four: double(2)}.four", json!({})), json!(4));
    assert_eq!(eval("{minus: function(a, b) a - b, r: minus(b: 1, a: 5)}.r", json!({})), json!(4), "named arguments to a function value");
    assert_eq!(eval("{lib: {minus: function(a, b) a - b}, r: lib.minus(b: 1, a: 5)}.r", json!({})), json!(4), "and to one a path gives");
    assert_eq!(eval("sort([3, 1, 2], function(x, y) x > y)", json!({})), json!([3, 2, 1]));
    assert!(parse_error("\"open").contains("not closed"));
    assert!(parse_error("").contains("empty"));
    assert!(parse_error("1 2").contains("unexpected"));
}

#[test]
fn hostile_expressions_are_bounded() {
    let deep = "(".repeat(500) + "1" + &")".repeat(500);
    assert!(parse_error(&deep).contains("nested"));
    let long = "1 + ".repeat(10_000) + "1";
    assert!(parse_error(&long).contains("bytes long"));
    let expression = Expression::parse("for i in 1..1000000000 return i").unwrap();
    assert_eq!(expression.evaluate(&Map::new()), Err(EvalError::OutOfFuel));
    let expression = Expression::parse("for a in 1..1000, b in 1..1000 return a * b").unwrap();
    assert_eq!(expression.evaluate(&Map::new()), Err(EvalError::OutOfFuel));
    let limits = Limits { max_string_bytes: 64, ..Limits::DEFAULT };
    let doubling = Expression::parse("for i in 1..10 return string join(for j in 1..i return \"xxxxxxxxxx\", \"\")").unwrap();
    assert!(matches!(doubling.evaluate_value_with(&Map::new(), &limits), Err(EvalError::TooLarge(_))));
}

/// Memory is bounded as well as time: copying a large variable on every
/// turn of a loop, or a `partial` that doubles each turn, stops at
/// `max_bytes`; and nothing nested too deep to be read back is stored.
#[test]
fn values_an_expression_copies_and_builds_are_bounded() {
    let big = Map::from_iter([("s".to_string(), json!("x".repeat(100 * 1024)))]);
    let copies = Expression::parse("for i in 1..100000 return s").unwrap();
    let refused = copies.evaluate(&big).unwrap_err();
    assert!(matches!(&refused, EvalError::TooLarge(why) if why.contains("bytes of values")), "{refused:?}");
    assert_eq!(Expression::parse("for i in 1..100 return s").unwrap().evaluate(&big).unwrap().as_array().unwrap().len(), 100, "10 MB is within");
    // Each turn's value holds every earlier one: 2^40 values, if nothing stopped it.
    let doubling = Expression::parse("for i in 1..40 return partial").unwrap();
    assert!(matches!(doubling.evaluate(&Map::new()), Err(EvalError::TooLarge(_))));
    let mut nested = json!(1);
    for _ in 0..62 {
        nested = json!([nested]);
    }
    let deep = Map::from_iter([("x".to_string(), nested)]);
    assert!(Expression::parse("[[x]]").unwrap().evaluate(&deep).is_ok(), "64 levels");
    let refused = Expression::parse("[[[x]]]").unwrap().evaluate(&deep).unwrap_err();
    assert!(matches!(&refused, EvalError::TooLarge(why) if why.contains("nested more than 64")), "{refused:?}");
}

#[test]
fn regular_expressions_match_replace_and_split() {
    assert_eq!(eval(r#"matches("order-42", "^order-[0-9]+$")"#, json!({})), json!(true));
    assert_eq!(eval(r#"matches("ORDER", "order", "i")"#, json!({})), json!(true));
    assert_eq!(eval(r#"matches("ORDER", "order")"#, json!({})), json!(false));
    assert_eq!(eval(r#"replace("a-b-c", "-", "+")"#, json!({})), json!("a+b+c"));
    assert_eq!(eval(r#"replace("2026-11-21", "(\\d+)-(\\d+)-(\\d+)", "$3.$2.$1")"#, json!({})), json!("21.11.2026"));
    assert_eq!(eval(r#"split("a, b,c", ",\\s*")"#, json!({})), json!(["a", "b", "c"]));
    assert_eq!(eval(r#"matches("x", "(")"#, json!({})), json!(null), "a pattern that does not compile is null");
    assert_eq!(eval(r#"matches("x", "x", "z")"#, json!({})), json!(null), "an unknown flag is null");
    assert_eq!(eval(r#"matches("a.b", "a.b", "q") and not(matches("axb", "a.b", "q"))"#, json!({})), json!(true), "q: the pattern is literal");
    assert_eq!(eval(r#"matches("abc", "b", null)"#, json!({})), json!(true), "null flags are none");
    assert_eq!(eval(r#"matches(email, "^[^@]+@[^@]+$")"#, json!({"email": "ada@example.org"})), json!(true));
}

#[test]
fn dates_times_and_durations_are_feel_s_own() {
    // Days and time durations are exact; years and months count months.
    assert_eq!(eval(r#"duration("P1D") = duration("PT24H")"#, json!({})), json!(true));
    assert_eq!(eval(r#"string(duration("P14M"))"#, json!({})), json!("P1Y2M"));
    assert_eq!(eval(r#"string(3 * @"PT8H")"#, json!({})), json!("P1D"));
    assert_eq!(eval(r#"duration("P1Y2D")"#, json!({})), json!(null), "both kinds at once is neither");
    // Local, offset and named-zone date-times; a month added to 31 January is the last of February.
    assert_eq!(eval(r#"string(@"2026-01-31T10:00:00" + @"P1M")"#, json!({})), json!("2026-02-28T10:00:00"));
    assert_eq!(eval(r#"@"2026-06-01T12:00:00@Europe/Paris" = @"2026-06-01T10:00:00Z""#, json!({})), json!(true));
    assert_eq!(eval(r#"string(@"2026-03-29T01:30:00@Europe/Paris" + @"PT1H")"#, json!({})), json!("2026-03-29T03:30:00@Europe/Paris"), "across the change to summer time");
    assert_eq!(eval(r#"@"2026-01-01T00:00:00" = @"2026-01-01T00:00:00Z""#, json!({})), json!(false), "a local time is not an instant");
    assert_eq!(eval(r#"string(@"2026-01-02" - @"2026-01-01")"#, json!({})), json!("P1D"));
    assert_eq!(eval(r#"string(@"23:30:00" + @"PT1H")"#, json!({})), json!("00:30:00"), "around the clock");
    assert_eq!(eval(r#"@"10:00:00+01:00" = @"09:00:00Z""#, json!({})), json!(true));
    assert_eq!(eval(r#"@"2026-12-31".year + day of year(@"2026-12-31")"#, json!({})), json!(2026 + 365));
    assert_eq!(eval(r#"string(years and months duration(@"2026-01-15", @"2027-03-14"))"#, json!({})), json!("P1Y1M"));
    assert_eq!(eval(r#"@"2026-01-01T10:00:00" instance of date and time"#, json!({})), json!(true));
}

#[test]
fn unary_tests_ranges_and_named_arguments() {
    assert_eq!(eval("5 in (< 3, [4..6])", json!({})), json!(true));
    assert_eq!(eval("7 in (< 3, [4..6])", json!({})), json!(false));
    assert_eq!(eval("before([1..5], [6..9]) and meets([1..5], [5..9]) and not(overlaps([1..5), [5..9]))", json!({})), json!(true));
    assert_eq!(eval("includes([1..10], 10) and not(includes([1..10), 10)) and during(3, [1..5])", json!({})), json!(true));
    assert_eq!(eval(r#"range("[1..10)") = [1..10)"#, json!({})), json!(true));
    assert_eq!(eval(r#"range("[3..1]")"#, json!({})), json!(null), "a start after its end");
    assert_eq!(eval("(< 10) = range(\"< 10\") and (>= 3).start = 3 and (= 5).end included", json!({})), json!(true), "a comparison with one endpoint is a range");
    assert_eq!(eval(r#"range("[date(\"2026-01-01\")..@\"2026-02-01\"]") = [@"2026-01-01"..@"2026-02-01"]"#, json!({})), json!(true), "a temporal function of a literal is a literal");
    assert_eq!(eval(r#"range("[x..10]")"#, json!({"x": 1})), json!(null), "an endpoint that is not a literal");
    assert_eq!(eval("(< 10) = (null..10)", json!({})), json!(false), "a comparison is not the range written with brackets");
    assert_eq!(eval("(!= 10) = (!= 10)", json!({})), json!(true));
    assert_eq!(eval("[5, 10, 11][item in (!= 10)]", json!({})), json!([5, 11]));
    assert_eq!(eval("for i in [2..1] return i", json!({})), json!(null), "a descending range in brackets is no range to walk");
    assert_eq!(eval("for i in 2..1 return i", json!({})), json!([2, 1]));
    assert_eq!(eval(r#"to base64("FEEL")"#, json!({})), json!("RkVFTA=="));
    assert_eq!(eval("(function(x) x) instance of function<Any>->Any", json!({})), json!(true));
    assert_eq!(eval(r#"substring(string: "baton", start position: 2, length: 3)"#, json!({})), json!("ato"));
    assert_eq!(eval("round half up(2.5) + round half down(2.5) + round up(1.1) + round down(1.9)", json!({})), json!(3 + 2 + 2 + 1));
    assert_eq!(eval("median([3, 1, 2, 4]) + stddev([2, 4]) ** 2", json!({})), json!(4.5));
    assert_eq!(parse_error(r#"substring(text: "x")"#), "substring() has no parameters named text");
    assert_eq!(eval("1.5e3 + 5E-1", json!({})), json!(1500.5));
    // A built-in of no arguments is not mistaken for a range function (it once indexed an empty list).
    assert_eq!(eval("concatenate()", json!({})), json!([]));
    assert_eq!(eval(r#"for i in "a".."z" return i"#, json!({})), json!(null), "a range that cannot be walked");
}

/// Variables with the step's time and a seed, as the engine gives them.
struct Step(Map<String, Json>);

impl crate::Variables for Step {
    fn get(&self, name: &str) -> Option<&Json> {
        self.0.get(name)
    }
    fn clock(&self) -> Option<i64> {
        Some(1_767_225_600_000) // 2026-01-01T00:00:00Z
    }
    fn seed(&self) -> Option<u64> {
        Some(42)
    }
}

#[test]
fn now_today_uuid_and_random_numbers_come_from_the_step() {
    let step = |source: &str| Expression::parse(source).unwrap().evaluate(&Step(Map::new())).unwrap();
    assert_eq!(step("string(now())"), json!("2026-01-01T00:00:00Z"));
    assert_eq!(step("today() + duration(\"P1D\")"), json!("2026-01-02"));
    let uuid = step("uuid()");
    assert_eq!(step("uuid()"), uuid, "the same step gives the same value");
    assert!(uuid.as_str().unwrap().chars().nth(14) == Some('4') && uuid.as_str().unwrap().len() == 36, "{uuid}");
    assert_eq!(step("uuid() = uuid()"), json!(false), "two draws differ");
    assert_eq!(step("random number() >= 0 and random number() < 1"), json!(true));
    // Without a step (no clock given), they are null rather than the machine's.
    assert_eq!(eval("now()", json!({})), json!(null));
}

#[test]
fn feel_scala_extensions() {
    assert_eq!(eval("is empty([]) and is blank(\"  \")", json!({})), json!(true));
    assert_eq!(eval("partition([1, 2, 3, 4, 5], 2)", json!({})), json!([[1, 2], [3, 4], [5]]));
    assert_eq!(eval("duplicate values([1, 2, 1, 3, 2])", json!({})), json!([1, 2]));
    assert_eq!(eval("and([true, true]) and not(or([false, false]))", json!({})), json!(true));
    assert_eq!(eval("extract(\"a1b22c333\", \"[0-9]+\")", json!({})), json!(["1", "22", "333"]));
    assert_eq!(eval("put({a: 1}, \"b\", 2)", json!({})), json!({"a": 1, "b": 2}));
    assert_eq!(eval("from json(\"{\\\"a\\\": [1, 2]}\").a[2]", json!({})), json!(2));
    assert_eq!(eval("to json({a: [1, \"x\"]})", json!({})), json!("{\"a\":[1,\"x\"]}"));
    assert_eq!(eval("last day of month(@\"2028-02-10\")", json!({})), json!("2028-02-29"));
    assert_eq!(eval("assert(5, 5 > 3)", json!({})), json!(5));
    // An escape FEEL does not know is kept as written, as FEEL-Scala keeps it.
    assert_eq!(eval(r#"matches("a1", "a\d")"#, json!({})), json!(true));
    assert_eq!(eval(r#"string length("\:")"#, json!({})), json!(2));
}

/// Found by `scripts/fuzz` (target `feel`): `= x` is the range `[x..x]`, so
/// each `=` of `= = = … x` copied the tree below it: 20 of them took 0.2 s and
/// 130 MB, 50 would take petabytes. Copies are now counted and bounded.
#[test]
fn comparisons_nested_in_comparisons_cannot_double_the_expression() {
    let hostile = format!("-[1,2222222222222{}-222222222>222]", "=".repeat(20));
    // Without the bound this parse ends (after copying about a million nodes) on the `>`.
    let message = parse_error(&hostile);
    assert!(message.contains("too large"), "{message}");
    // A few stay fine: `= = 5` is a range whose ends are the range [5..5].
    assert_eq!(eval("(= = 5) = (= = 5)", json!({})), json!(true));
}
