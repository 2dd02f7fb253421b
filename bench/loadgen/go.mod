module podrec/bench/loadgen

go 1.22
