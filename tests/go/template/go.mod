module corestore/tests/go/template

go 1.19
