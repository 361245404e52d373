package flowstone

// DateRangeDays exposes dateRangeDays to the tests.
var DateRangeDays = dateRangeDays
