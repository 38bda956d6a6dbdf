module corestore/tests/go/fmt

go 1.19
