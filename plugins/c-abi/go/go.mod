module switchboard.example/ledger

go 1.19
