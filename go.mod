module paystatus

go 1.26
